package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/bulkheadhq/bulkhead/internal/observe"
)

// logOptions are the flags that choose how commands log.
type logOptions struct {
	format, level string // as given

	parsedFormat string
	parsedLevel  *slog.Level // nil: the command's own level
}

func (l *logOptions) flags(pf *pflag.FlagSet) {
	pf.StringVar(&l.format, "log-format", os.Getenv("BULKHEAD_LOG_FORMAT"),
		"log format: text (for people) or json (one object a line); default text when stderr is a terminal, else json (env BULKHEAD_LOG_FORMAT)")
	pf.StringVar(&l.level, "log-level", os.Getenv("BULKHEAD_LOG_LEVEL"),
		"least level logged: debug, info, warn or error; default info for serve, warn for other commands (env BULKHEAD_LOG_LEVEL)")
}

// parse checks the flags; an error names the flag and its variable.
func (l *logOptions) parse(stderr io.Writer) error {
	f, err := observe.ParseLogFormat(l.format, stderr)
	if err != nil {
		return fmt.Errorf("--log-format (BULKHEAD_LOG_FORMAT): %w", err)
	}
	l.parsedFormat = f
	if l.level != "" {
		lv, err := observe.ParseLogLevel(l.level)
		if err != nil {
			return fmt.Errorf("--log-level (BULKHEAD_LOG_LEVEL): %w", err)
		}
		l.parsedLevel = &lv
	}
	return nil
}

// logger returns the logger the flags ask for, at def unless --log-level
// says otherwise. Every library's lines go to it too (see
// observe.RouteLibraryLogs).
func (l *logOptions) logger(stderr io.Writer, def slog.Level) *slog.Logger {
	if l.parsedFormat == "" { // parse was not run
		l.parsedFormat = observe.DefaultLogFormat(stderr)
	}
	level := def
	if l.parsedLevel != nil {
		level = *l.parsedLevel
	}
	log := observe.NewFormattedLogger(stderr, l.parsedFormat, level)
	observe.RouteLibraryLogs(log)
	return log
}
