package bulkhead_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/bulkheadhq/bulkhead"
)

// Embedding bulkhead: New opens (or creates) the data directory, Handler is
// the HTTP API, Run serves it until the context ends.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "bulkhead-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	app, err := bulkhead.New(bulkhead.Config{
		DataDir:    dir,
		AdminToken: "example-operator-token",
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()

	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.Status)

	// In a real program: app.Run(ctx) with ctx cancelled on SIGTERM.
	_ = context.Background
	// Output: 200 OK
}
