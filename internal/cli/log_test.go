package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childServe, when set, makes the test binary run the command line with
// the arguments in BULKHEAD_TEST_CHILD_ARGS: a real serve whose stderr is
// the process's own, where libraries write too.
const childServe = "BULKHEAD_TEST_CHILD_SERVE"

func init() {
	if os.Getenv(childServe) == "1" {
		os.Exit(Main(strings.Split(os.Getenv("BULKHEAD_TEST_CHILD_ARGS"), "\x1f"), os.Stdout, os.Stderr))
	}
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A real serve with Redis unreachable, in JSON: every line on its stderr —
// its own, go-redis's, River's — is a JSON object; the serving line names
// the store, Redis and the console; the warning about Redis names its URL
// without the password; requests log duration_ms.
func TestServeLogsOnlyJSON(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	redisAddr := ln.Addr().String()
	ln.Close() // nothing listens there
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	args := []string{"serve", "--addr", addr, "--data", dir, "--redis", "redis://:s3cretpw@" + redisAddr + "/0", "--log-format", "json"}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childServe+"=1", "BULKHEAD_TEST_CHILD_ARGS="+strings.Join(args, "\x1f"),
		"BULKHEAD_ADMIN_TOKEN=test-operator-token-0123")
	var stderr lockedLog
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	serving := regexp.MustCompile(`"msg":"serving","addr":"([^"]+)"`)
	waitLog(t, &stderr, "the serving line", func(s string) bool { return serving.MatchString(s) })
	for _, path := range []string{"/readyz", "/v1/tenants"} {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer test-operator-token-0123")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if path == "/readyz" && res.StatusCode != 200 {
			t.Errorf("/readyz = %d with Redis unreachable, want 200 (degraded)", res.StatusCode)
		}
	}
	waitLog(t, &stderr, "the request lines", func(s string) bool { return strings.Count(s, `"msg":"request"`) >= 2 })
	time.Sleep(1500 * time.Millisecond) // let the breaker's probes and go-redis log a while; not a timing assertion
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()

	out := stderr.String()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	var lines int
	for sc.Scan() {
		lines++
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Errorf("a line on stderr is not JSON: %q", sc.Text())
			continue
		}
		switch obj["msg"] {
		case "serving":
			if obj["store"] != "sqlite:"+dir+"/bulkhead.db" || obj["redis"] != redisAddr || obj["console"] != "http://"+addr+"/ui" {
				t.Errorf("the serving line does not name the store, Redis and the console: %s", sc.Text())
			}
		case "request":
			if _, ok := obj["duration_ms"].(float64); !ok || obj["duration"] != nil {
				t.Errorf("a request line without duration_ms in milliseconds: %s", sc.Text())
			}
		}
	}
	if lines < 3 {
		t.Errorf("%d lines on stderr, want the server's:\n%s", lines, out)
	}
	if !strings.Contains(out, `"redis":"redis://`+redisAddr+`/0"`) || !strings.Contains(out, "rate limits are enforced per node") {
		t.Errorf("no warning naming Redis's URL:\n%s", out)
	}
	if strings.Contains(out, "s3cretpw") {
		t.Errorf("stderr shows Redis's password")
	}
}

func waitLog(t *testing.T, l *lockedLog, what string, cond func(string) bool) {
	t.Helper()
	for give := time.Now().Add(30 * time.Second); !cond(l.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(give) {
			t.Fatalf("gave up waiting for %s; stderr:\n%s", what, l.String())
		}
	}
}

// Bad values of the log flags and variables are errors naming both.
func TestLogFlagsRefuseBadValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"version", "--log-format", "xml"}, nil, "--log-format (BULKHEAD_LOG_FORMAT)"},
		{[]string{"version", "--log-level", "loud"}, nil, "--log-level (BULKHEAD_LOG_LEVEL)"},
		{[]string{"version"}, map[string]string{"BULKHEAD_LOG_LEVEL": "verbose"}, "--log-level (BULKHEAD_LOG_LEVEL)"},
	} {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		var stdout, stderr bytes.Buffer
		if code := Main(c.args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want an error naming %s", c.args, c.env, code, stderr.String(), c.want)
		}
		for k := range c.env {
			os.Unsetenv(k)
		}
	}
}

// With --log-format json the error a command ends with is a JSON line too,
// so that the whole of stderr parses; in text, or by default for commands
// other than serve, it stays one plain line.
func TestFailureLineFollowsLogFormat(t *testing.T) {
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	dir := filepath.Join(t.TempDir(), "none")
	code, _, errOut := run(t, dir, "--log-format", "json", "tenant", "list")
	if code == 0 {
		t.Fatalf("tenant list without a database = exit 0, stderr %s", errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	for _, line := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("stderr line %q is not JSON: %v", line, err)
		}
	}
	var last struct{ Level, Msg, Err string }
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if last.Level != "ERROR" || !strings.Contains(last.Err, "no database") {
		t.Errorf("last line %q; want an ERROR naming the missing database", lines[len(lines)-1])
	}
	for _, args := range [][]string{{"--log-format", "text", "tenant", "list"}, {"tenant", "list"}} {
		t.Setenv("BULKHEAD_LOG_FORMAT", "")
		code, _, errOut = run(t, dir, args...)
		if code == 0 || !strings.HasPrefix(errOut, "bulkhead: ") {
			t.Errorf("bulkhead %s printed %q (exit %d); want the plain bulkhead: line", strings.Join(args, " "), errOut, code)
		}
	}
}
