package observe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"golang.org/x/term"
)

// Log formats: lines for people, or one JSON object a line for machines.
const (
	LogText = "text"
	LogJSON = "json"
)

// ParseLogFormat checks a log format: "text" or "json" (any case); ""
// means DefaultLogFormat(w).
func ParseLogFormat(s string, w io.Writer) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "":
		return DefaultLogFormat(w), nil
	case LogText, LogJSON:
		return f, nil
	}
	return "", fmt.Errorf("log format %q: want text or json", s)
}

// DefaultLogFormat is "text" when w is a terminal, for people, and "json"
// otherwise, for machines.
func DefaultLogFormat(w io.Writer) string {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return LogText
	}
	return LogJSON
}

// ParseLogLevel parses debug, info, warn (or warning) or error, in any
// case.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// NewFormattedLogger returns a logger writing to w in format (LogText or
// LogJSON; anything else is JSON) at level.
func NewFormattedLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == LogText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// RouteLibraryLogs makes log the destination of every line the libraries
// bulkhead uses would write on their own: go-redis's (at warn, with
// "component":"go-redis"), and those of the log package and of
// slog.Default, so that no plain line breaks a JSON stream.
func RouteLibraryLogs(log *slog.Logger) {
	redis.SetLogger(redisLogger{log.With("component", "go-redis")})
	slog.SetDefault(log)
}

// redisLogger adapts go-redis's logger to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Log(ctx, slog.LevelWarn, strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
}
