package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"
)

// bareServer is the baseline bench crud compares with: a net/http server
// on loopback, in this process, whose handler answers every request with
// one fixed JSON body and does nothing else (no routing, authentication,
// admission, database, logging or metrics). What the API's GET by id
// costs beyond it is what bulkhead adds to the HTTP floor of this
// machine, client included.
type bareServer struct {
	// URL is its base URL, without a trailing slash.
	URL    string
	srv    *http.Server
	served chan error
}

// startBare starts a bare server answering body as application/json.
func startBare(body []byte) (*bareServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctype, clen := []string{"application/json"}, []string{strconv.Itoa(len(body))}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr["Content-Type"], hdr["Content-Length"] = ctype, clen
		w.Write(body)
	})
	b := &bareServer{URL: "http://" + ln.Addr().String(), served: make(chan error, 1),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() { b.served <- b.srv.Serve(ln) }()
	return b, nil
}

// close stops b, waiting up to 5s for the requests in flight.
func (b *bareServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.srv.Shutdown(ctx)
	if serr := <-b.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
