package changefeed

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
)

// pgNodes opens feeds on a database of the test's own (notification
// channels are per database), as its application role.
func pgNodes(t *testing.T, connURL func(d *pgtest.Database) string, o options) (nodes, *pgtest.Database) {
	pgtest.SuperURL(t)
	d := pgtest.New(t, t)
	return nodes{
		open: func(t *testing.T, onLive func(bool)) Feed {
			o := o
			o.onLive = onLive
			f, err := newPostgres(context.Background(), connURL(d), nil, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		},
		kill: func(t *testing.T, f Feed) {
			pid := f.(*Postgres).pid()
			if pid == 0 {
				t.Fatal("no listening connection")
			}
			pgtest.Exec(t, d.Super, fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid))
		},
	}, d
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	n, _ := pgNodes(t, func(d *pgtest.Database) string { return d.AppURL(t) }, options{})
	testNodes(t, n)
}

// While PostgreSQL cannot be reached the feed is not live, and retries;
// once it can, the feed listens again and delivers a Reset.
func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	pgtest.SuperURL(t)
	target, err := url.Parse(pgtest.SuperURL(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []pgtest.CutMode{pgtest.Reset, pgtest.Refuse} {
		proxy := pgtest.NewProxy(t, target.Host)
		n, _ := pgNodes(t, func(d *pgtest.Database) string { return proxy.URL(d.AppURL(t)) }, options{})
		onLive, liveCh := liveChanges()
		f := n.open(t, onLive)
		expectLive(t, liveCh, true)
		c := collect(t, f)
		proxy.Cut(mode)
		expectLive(t, liveCh, false)
		proxy.Restore()
		expectLive(t, liveCh, true)
		c.expect(t, Reset)
	}
}

// A listening connection that stops answering, without being closed, is
// found out by the ping of an idle subscription and replaced.
func TestPostgresSilentConnection(t *testing.T) {
	t.Parallel()
	pgtest.SuperURL(t)
	target, err := url.Parse(pgtest.SuperURL(t))
	if err != nil {
		t.Fatal(err)
	}
	fr := newFreezer(t, target.Host)
	n, _ := pgNodes(t, func(d *pgtest.Database) string {
		u, _ := url.Parse(d.AppURL(t))
		u.Host = fr.addr
		return u.String()
	}, options{pingEvery: 200 * time.Millisecond})
	onLive, liveCh := liveChanges()
	f := n.open(t, onLive)
	expectLive(t, liveCh, true)
	c := collect(t, f)
	fr.freeze()
	expectLive(t, liveCh, false)
	expectLive(t, liveCh, true)
	c.expect(t, Reset)
	other := n.open(t, nil)
	e := Event{Kind: KindPlan, Key: "free"}
	if err := other.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	c.expect(t, e)
}
