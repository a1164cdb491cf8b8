package backup

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
)

// holdEnv, in the environment of this test binary run again, names an
// SQLite store for it to open and hold until its standard input closes.
const holdEnv = "BULKHEAD_TEST_HOLD_SQLITE"

// TestHoldSQLite is the helper process of TestSQLiteInUse.
func TestHoldSQLite(t *testing.T) {
	path := os.Getenv(holdEnv)
	if path == "" {
		t.Skip(holdEnv + " is not set; skipping (a helper process of TestSQLiteInUse)")
	}
	st, err := sqlitestore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	os.Stdout.WriteString("open\n")
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// TestSQLiteInUse: a store another process has open, as a server does, is
// in use; once that process has closed it, it is not.
func TestSQLiteInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bulkhead.db")
	st, err := sqlitestore.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if inUse, err := sqliteInUse(path); inUse || err != nil {
		t.Fatalf("sqliteInUse of a closed store = %v, %v; want false", inUse, err)
	}

	cmd := exec.Command(os.Args[0], "-test.run", "^TestHoldSQLite$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "open\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("the helper process said %q, %v; want it to open the store", line, err)
	}
	inUse, err := sqliteInUse(path)
	stdin.Close()
	if werr := cmd.Wait(); werr != nil {
		t.Errorf("helper process: %v", werr)
	}
	if !inUse || err != nil {
		t.Errorf("sqliteInUse of a store another process has open = %v, %v; want true", inUse, err)
	}
	if inUse, err := sqliteInUse(path); inUse || err != nil {
		t.Errorf("sqliteInUse after the other process closed the store = %v, %v; want false", inUse, err)
	}
}
