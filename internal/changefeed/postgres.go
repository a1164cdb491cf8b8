package changefeed

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresChannel is the channel a Postgres feed listens and notifies on.
const PostgresChannel = "bulkhead_changes"

// options are what tests change about a feed.
type options struct {
	// channel replaces the feed's channel, so that tests sharing a server
	// do not hear each other.
	channel string
	// pingEvery is how long the subscription may be idle before the feed
	// checks that its connection still answers. Defaults to 5s.
	pingEvery time.Duration
	// onLive, if set, is called with each change of Live, on the goroutine
	// that receives events, before any Reset that follows is queued.
	onLive func(live bool)
}

func (o options) withDefaults(channel string) options {
	if o.channel == "" {
		o.channel = channel
	}
	if o.pingEvery <= 0 {
		o.pingEvery = 5 * time.Second
	}
	return o
}

// Postgres is a Feed over PostgreSQL's LISTEN/NOTIFY. One dedicated
// connection listens on PostgresChannel; a small pool of its own sends
// pg_notify. When the listening connection fails (the server restarts, an
// administrator ends it, the network drops it: an idle connection is pinged
// every few seconds), the feed is not live until it has connected and
// listens again, retrying with back-off, and then delivers a Reset.
//
// Its URL must reach PostgreSQL directly or through a pooler in session
// mode: LISTEN does not survive transaction pooling. Any role that may
// connect can listen and notify; the application role's URL serves.
type Postgres struct {
	link
	log  *slog.Logger
	cfg  *pgx.ConnConfig // the listener's
	pub  *pgxpool.Pool
	conn *pgx.Conn // the listening connection, nil while there is none; guarded by mu
}

var _ Feed = (*Postgres)(nil)

// NewPostgres connects to connString, listens, and returns the feed, live.
// ctx bounds the first connection only; it returns an error if the feed
// cannot listen by then. logger receives the subscription's losses and
// recoveries; nil discards them.
func NewPostgres(ctx context.Context, connString string, logger *slog.Logger) (*Postgres, error) {
	return newPostgres(ctx, connString, logger, options{})
}

func newPostgres(ctx context.Context, connString string, logger *slog.Logger, o options) (*Postgres, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("changefeed: %w", err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "bulkhead-changefeed"
	}
	// When a wait for notifications ends to ping the connection, or Close
	// ends it, interrupt the read at once: the default handler would also
	// send the server a cancel request, on a connection of its own.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	pcfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("changefeed: %w", err)
	}
	pcfg.MaxConns = 2
	if pcfg.ConnConfig.RuntimeParams["application_name"] == "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "bulkhead-changefeed"
	}
	pub, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("changefeed: %w", err)
	}
	p := &Postgres{log: logger, cfg: cfg, pub: pub}
	p.opts, p.done = o.withDefaults(PostgresChannel), make(chan struct{})
	conn, err := p.listen(ctx)
	if err != nil {
		pub.Close()
		return nil, err
	}
	p.hub = newHub()
	var runCtx context.Context
	runCtx, p.cancel = context.WithCancel(context.Background())
	p.setConn(conn)
	p.setLive(true)
	go p.run(runCtx, conn)
	return p, nil
}

// listen connects and listens.
func (p *Postgres) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("changefeed: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{p.opts.channel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("changefeed: listen: %w", err)
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Close(ctx)
}

func (p *Postgres) setConn(conn *pgx.Conn) {
	p.mu.Lock()
	p.conn = conn
	p.mu.Unlock()
}

// run receives notifications on conn, and on new connections after it
// fails, until ctx ends.
func (p *Postgres) run(ctx context.Context, conn *pgx.Conn) {
	defer close(p.done)
	for {
		err := p.receive(ctx, conn)
		p.setLive(false)
		p.setConn(nil)
		closeConn(conn)
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("changefeed: the PostgreSQL subscription is lost; events are missed until it is back", "err", err)
		lost := time.Now()
		for attempt := 1; ; attempt++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff(attempt)):
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			conn, err = p.listen(cctx)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			if attempt%20 == 1 {
				p.log.Warn("changefeed: cannot listen on PostgreSQL; retrying", "attempt", attempt, "err", err)
			}
		}
		p.setConn(conn)
		p.setLive(true)
		p.log.Info("changefeed: the PostgreSQL subscription is back; dropping what was cached", "after_ms", float64(time.Since(lost))/float64(time.Millisecond))
		p.hub.post(Reset)
	}
}

// receive hands conn's notifications to the hub until conn fails or ctx
// ends. It pings conn whenever no notification came for a while.
func (p *Postgres) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, p.opts.pingEvery)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if n != nil {
			e, derr := decode([]byte(n.Payload))
			if derr != nil {
				p.log.Warn("changefeed: dropping what was cached", "err", derr)
			}
			p.hub.post(e)
		}
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() == nil:
			return err
		}
		// Idle: make sure the connection still answers.
		pctx, cancel := context.WithTimeout(ctx, p.opts.pingEvery)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}

// Publish sends e with pg_notify: every node listening receives it once the
// statement has run (it runs in a transaction of its own).
func (p *Postgres) Publish(ctx context.Context, e Event) error {
	payload, err := encode(e)
	if err != nil {
		return err
	}
	if p.isClosed() {
		return ErrClosed
	}
	if _, err := p.pub.Exec(ctx, "SELECT pg_notify($1, $2)", p.opts.channel, string(payload)); err != nil {
		return fmt.Errorf("changefeed: publish: %w", err)
	}
	return nil
}

// Close implements Feed.
func (p *Postgres) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.hub.close()
	p.cancel()
	<-p.done
	p.pub.Close()
	return nil
}

// pid returns the backend pid of the listening connection, or 0 while
// there is none; for tests.
func (p *Postgres) pid() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return 0
	}
	return p.conn.PgConn().PID()
}
