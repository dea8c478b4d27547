package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestTracingEnabled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, false},
	}
	for _, tt := range tests {
		if got := tracingEnabled(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("tracingEnabled(%v) = %v, want %v", tt.env, got, tt.want)
		}
	}
}

// TestServeExportsTraces: with an OTLP endpoint configured, a manifest
// request through pullgate serve produces spans that reach the collector
// (flushed at shutdown).
func TestServeExportsTraces(t *testing.T) {
	var mu sync.Mutex
	var received [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		if r.URL.Path == "/v1/traces" {
			received = append(received, body)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	status, code, logs := serveAndPull(t, newTestEnv(t))
	if status != http.StatusOK || code != exitOK {
		t.Fatalf("serve: manifest %d, exit %d; logs:\n%s", status, code, logs)
	}
	mu.Lock()
	defer mu.Unlock()
	all := bytes.Join(received, nil)
	for _, span := range []string{"manifest", "verify", "pullgate"} {
		if !bytes.Contains(all, []byte(span)) {
			t.Errorf("exported traces (%d requests, %d bytes) lack %q", len(received), len(all), span)
		}
	}
}
