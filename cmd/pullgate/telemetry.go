package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracingEnabled reports whether the standard OpenTelemetry environment
// asks for trace export over OTLP.
func tracingEnabled(getenv func(string) string) bool {
	if getenv("OTEL_TRACES_EXPORTER") == "none" || getenv("OTEL_SDK_DISABLED") == "true" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// newTracerProvider returns the tracer provider pullgate's spans (one per
// manifest request, one per verification) go to: an OTLP/HTTP exporter,
// configured by the standard OTEL_EXPORTER_OTLP_* variables, when an
// endpoint is set, else a no-op. Nothing is installed globally. The
// returned function flushes and stops the exporter.
func newTracerProvider(ctx context.Context, log *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	if !tracingEnabled(os.Getenv) {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", "pullgate"),
		attribute.String("service.version", version),
	))
	if err != nil {
		return nil, nil, fmt.Errorf("OpenTelemetry resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	log.Info("exporting traces over OTLP/HTTP (OTEL_EXPORTER_OTLP_* settings)")
	return tp, tp.Shutdown, nil
}
