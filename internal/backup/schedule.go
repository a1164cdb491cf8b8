package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/observe"
)

// Scheduler takes a backup at every tick, uploads it, downloads it again
// and verifies the downloaded copy, then keeps only the newest Keep
// backups. Set Source, Dest and Every; the rest is optional.
type Scheduler struct {
	Source *Source
	// Dest is the destination, as OpenDest takes it.
	Dest string
	// Every is the interval between backups.
	Every time.Duration
	// Keep is how many backups to keep; < 1 keeps all.
	Keep int
	// Verify configures the verification of each backup.
	Verify VerifyOptions
	// StagingDir is where backups are staged and downloaded to be
	// verified, in directories removed afterwards. Defaults to
	// os.TempDir().
	StagingDir string
	// Metrics, if set, count successes and failures.
	Metrics *observe.BackupMetrics
	// Logger receives a line per backup. Defaults to discarding.
	Logger *slog.Logger
	// LockFunc, if set, is called before each backup, so that of several
	// nodes only one takes it: ok false means another node holds the lock
	// and this one skips the tick. While it holds the lock, a node also
	// skips the tick if the destination's newest backup is younger than
	// half of Every: another node took this interval's.
	LockFunc func(ctx context.Context) (unlock func(), ok bool, err error)
	// Ticks, if set, replaces the ticker of Every; for tests.
	Ticks <-chan time.Time
	// NowFunc returns the current time. Defaults to time.Now.
	NowFunc func() time.Time
}

// Run takes backups until ctx is done (or Ticks is closed).
func (s *Scheduler) Run(ctx context.Context) {
	ticks := s.Ticks
	if ticks == nil {
		t := time.NewTicker(s.Every)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ticks:
			if !ok {
				return
			}
			s.RunOnce(ctx) // logged and counted
		}
	}
}

func (s *Scheduler) now() time.Time {
	if s.NowFunc != nil {
		return s.NowFunc()
	}
	return time.Now()
}

func (s *Scheduler) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// ErrSkipped is returned by RunOnce when another node took the backup.
var ErrSkipped = errors.New("backup: another node takes this interval's backup")

// RunOnce takes, uploads, verifies and prunes one backup now. It logs the
// outcome (an error line on failure) and counts it in Metrics.
func (s *Scheduler) RunOnce(ctx context.Context) (*Report, error) {
	start := s.now()
	r, stage, err := s.runOnce(ctx)
	switch {
	case errors.Is(err, ErrSkipped):
		s.log().Info("scheduled backup skipped: another node took it")
	case err != nil:
		if s.Metrics != nil {
			s.Metrics.Failed(stage)
		}
		s.log().Error("scheduled backup failed", "stage", stage, "err", err)
	default:
		if s.Metrics != nil {
			s.Metrics.Succeeded(start, s.now().Sub(start), r.Size)
		}
		s.log().Info("scheduled backup taken and verified", "name", r.Name, "tenants", r.Tenants, "duration_ms", float64(s.now().Sub(start))/float64(time.Millisecond))
	}
	return r, err
}

func (s *Scheduler) runOnce(ctx context.Context) (_ *Report, stage string, err error) {
	stage = observe.BackupTake
	if s.LockFunc != nil {
		unlock, ok, err := s.LockFunc(ctx)
		if err != nil {
			return nil, stage, fmt.Errorf("take the backup lock: %w", err)
		}
		if !ok {
			return nil, stage, ErrSkipped
		}
		defer unlock()
	}
	dest, err := OpenDest(ctx, s.Dest)
	if err != nil {
		return nil, stage, err
	}
	defer dest.Close()
	if s.LockFunc != nil {
		names, err := dest.List(ctx)
		if err != nil {
			return nil, stage, err
		}
		if len(names) > 0 {
			if t, ok := nameTime(names[len(names)-1]); ok && s.now().Sub(t) < s.Every/2 {
				return nil, stage, ErrSkipped
			}
		}
	}
	staging, err := os.MkdirTemp(s.StagingDir, "bulkhead-backup-")
	if err != nil {
		return nil, stage, err
	}
	defer os.RemoveAll(staging)
	m, err := Take(ctx, s.Source, staging)
	if err != nil {
		return nil, stage, err
	}
	if err := dest.Upload(ctx, filepath.Join(staging, m.Name)); err != nil {
		return nil, stage, err
	}
	stage = observe.BackupVerify
	r, err := s.verify(ctx, dest, m.Name, staging)
	if err != nil {
		// Only verified backups stay: they are the ones Keep counts, and
		// the ones other nodes take as this interval's.
		if derr := dest.Delete(context.WithoutCancel(ctx), m.Name); derr != nil {
			s.log().Error("a backup that did not verify is left in the destination", "name", m.Name, "err", derr)
		}
		return r, stage, err
	}
	if _, err := dest.Prune(ctx, s.Keep); err != nil {
		// The backup itself is good; pruning is retried next time.
		s.log().Error("old backups not pruned", "err", err)
	}
	return r, stage, nil
}

// verify downloads backup name into staging and verifies it.
func (s *Scheduler) verify(ctx context.Context, dest *Dest, name, staging string) (*Report, error) {
	got, err := dest.Download(ctx, name, filepath.Join(staging, "verify"))
	if err != nil {
		return nil, err
	}
	r, err := Verify(ctx, got, &s.Verify)
	if err != nil {
		return nil, err
	}
	if !r.OK {
		return r, fmt.Errorf("backup %s does not verify: %s", name, strings.Join(r.Problems, "; "))
	}
	return r, nil
}

// nameTime parses the time out of a backup's name.
func nameTime(name string) (time.Time, bool) {
	t, err := time.Parse("20060102T150405.000Z", strings.TrimPrefix(name, "bulkhead-"))
	return t, err == nil
}
