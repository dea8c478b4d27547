package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
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

	env := newTestEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env.writeConfig(t, addr)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var logs bytes.Buffer
	go func() { done <- run(ctx, []string{"serve", "--config", env.config}, &bytes.Buffer{}, &logs) }()
	client := &http.Client{Timeout: 5 * time.Second}
	var resp *http.Response
	for range 200 {
		resp, err = client.Get("http://" + addr + "/v2/apps/web/manifests/signed")
		if err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling for start-up, not a timing assertion
	}
	if err != nil {
		t.Fatalf("pullgate never served: %v", err)
	}
	resp.Body.Close()
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("serve exited %d; logs:\n%s", code, logs.String())
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
