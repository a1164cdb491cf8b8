package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestKeysRotateSigning(t *testing.T) {
	dir := dataDir(t)
	for want := 2; want <= 3; want++ {
		out := mustRun(t, dir, "keys", "rotate-signing")
		var got struct {
			Version int    `json:"version"`
			Kid     string `json:"kid"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		if got.Version != want || got.Kid == "" {
			t.Errorf("rotate-signing = %+v, want version %d and a kid", got, want)
		}
	}
	for _, f := range []string{"token-signing.key", "token-signing.v2.key", "token-signing.v3.key"} {
		if _, err := os.Stat(filepath.Join(dir, "keys", f)); err != nil {
			t.Errorf("%s: %v (previous keys stay until their tokens expire)", f, err)
		}
	}
}
