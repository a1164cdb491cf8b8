package core

import (
	"crypto/ed25519"
	"sync"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
)

// SigningKeyGrace is how long, beyond the longest lifetime an access token
// may claim, a previous signing key keeps verifying after a rotation: the
// time every node takes to pick the rotation up (they re-read the key
// directory every few seconds, and at once when they meet a token of a key
// they do not know) and the clock leeway of verification.
const SigningKeyGrace = 2 * time.Minute

// signingState is what a node knows of the key directory's signing keys.
type signingState struct {
	reload     sync.Mutex // held by ReloadSigningKeys
	mu         sync.Mutex
	version    int       // of the current key applied
	lastUnseen time.Time // the last reload for a token of an unknown key
}

// SigningKeyKeep is how long after a rotation a previous signing key keeps
// verifying when access tokens may claim a lifetime of maxAccessTTL.
func SigningKeyKeep(maxAccessTTL time.Duration) time.Duration { return maxAccessTTL + SigningKeyGrace }

// ReloadSigningKeys re-reads the token signing keys of the key directory:
// a rotation made since (by bulkhead keys rotate-signing, on any node
// sharing the directory) becomes this node's signing key, previous keys
// verify until their tokens have expired, and retired ones stop verifying.
// On an error (an unreadable or malformed key file) it keeps the keys it
// had. It does nothing for a Keyring not loaded from a directory.
func (c *Core) ReloadSigningKeys() error {
	if c.keys.Dir == "" {
		return nil
	}
	// One reload at a time, so that an older reading of the directory is
	// never applied after a newer one.
	c.signing.reload.Lock()
	defer c.signing.reload.Unlock()
	ks, err := keyring.LoadSigningKeys(c.keys.Dir, c.now(), c.signingKeep)
	if err != nil {
		return err
	}
	verify := make([]ed25519.PublicKey, 0, len(ks.Previous))
	for _, k := range ks.Previous {
		verify = append(verify, k.Public())
	}
	c.signing.mu.Lock()
	defer c.signing.mu.Unlock()
	if err := c.tokens.SetKeys(ks.Current.Key, verify); err != nil {
		return err
	}
	if c.signing.version != ks.Current.Version {
		if c.signing.version != 0 {
			c.log.Info("token signing key rotated", "version", ks.Current.Version, "kid", keyring.KeyID(ks.Current.Public()),
				"previous_keys", len(verify))
		}
		c.signing.version = ks.Current.Version
	}
	return nil
}

// reloadForUnknownKey re-reads the signing keys when a token names a key
// this node does not know, at most once a second however many such tokens
// arrive. It reports whether it re-read them.
func (c *Core) reloadForUnknownKey() bool {
	now := time.Now()
	c.signing.mu.Lock()
	if now.Sub(c.signing.lastUnseen) < time.Second {
		c.signing.mu.Unlock()
		return false
	}
	c.signing.lastUnseen = now
	c.signing.mu.Unlock()
	if err := c.ReloadSigningKeys(); err != nil {
		c.log.Error("token signing keys not reloaded; keeping the current ones", "err", err)
		return false
	}
	return true
}
