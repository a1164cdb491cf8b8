package cli

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheck is "healthcheck": a probe for container engines and
// service managers where the image has no curl.
func newHealthcheck(o *options) *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the server answers GET /healthz with 200, else 1 (for container health checks)",
		Long: "healthcheck probes a server, by default the one serve starts on this machine with the same\n" +
			"environment: /healthz at the port of BULKHEAD_ADDR on loopback, over HTTPS when BULKHEAD_TLS_CERT\n" +
			"is set (the loopback probe sends no credential and does not check the certificate, which names\n" +
			"the public host). It prints nothing on success.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			client := &http.Client{Timeout: timeout}
			if url == "" {
				var err error
				if url, err = probeURL(envOr("BULKHEAD_ADDR", "127.0.0.1:8080"), os.Getenv("BULKHEAD_TLS_CERT") != ""); err != nil {
					return err
				}
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // loopback only, see Long
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("unhealthy: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("unhealthy: %s answered %s", url, resp.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the URL to probe (default: /healthz of the local server, from BULKHEAD_ADDR and BULKHEAD_TLS_CERT)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}

// probeURL is the /healthz URL of a server listening on addr, reached on
// loopback when it listens on every address.
func probeURL(addr string, https bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("BULKHEAD_ADDR %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz", nil
}
