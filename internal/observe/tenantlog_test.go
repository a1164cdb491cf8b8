package observe

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestTenantSlugs(t *testing.T) {
	var buf bytes.Buffer
	h := WithTenantSlugs(slog.NewJSONHandler(&buf, nil))
	log := slog.New(h)
	log.Info("before any lookup", "tenant", "t-1")
	lookups := 0
	h.SetLookup(func(_ context.Context, id string) (string, error) {
		lookups++
		if id == "t-1" {
			return "acme", nil
		}
		return "", errors.New("no such tenant")
	})
	log.Info("a", "tenant", "t-1")
	log.Info("b", "tenant", "t-1")
	log.With("tenant", "t-1").Info("c")
	log.Info("d", "tenant", "t-1", "tenant_slug", "given")
	log.Info("e", "tenant", "t-2")
	log.Info("f")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`"msg":"before any lookup","tenant":"t-1"}`,
		`"msg":"a","tenant":"t-1","tenant_slug":"acme"}`,
		`"msg":"b","tenant":"t-1","tenant_slug":"acme"}`,
		`"msg":"c","tenant":"t-1","tenant_slug":"acme"}`,
		`"msg":"d","tenant":"t-1","tenant_slug":"given"}`,
		`"msg":"e","tenant":"t-2"}`,
		`"msg":"f"}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %s, want it to end with %s", i, lines[i], w)
		}
	}
	if lookups != 2 {
		t.Errorf("%d lookups, want 2 (t-1 once, then cached; t-2 once)", lookups)
	}
}

func TestParseLogFlags(t *testing.T) {
	for in, want := range map[string]string{"text": LogText, "JSON": LogJSON} {
		if got, err := ParseLogFormat(in, &bytes.Buffer{}); err != nil || got != want {
			t.Errorf("ParseLogFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, _ := ParseLogFormat("", &bytes.Buffer{}); got != LogJSON {
		t.Errorf("default format for a buffer = %q, want json (not a terminal)", got)
	}
	if _, err := ParseLogFormat("xml", nil); err == nil {
		t.Error("ParseLogFormat(xml) succeeded")
	}
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got, err := ParseLogLevel(in); err != nil || got != want {
			t.Errorf("ParseLogLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLogLevel("loud"); err == nil {
		t.Error("ParseLogLevel(loud) succeeded")
	}
}
