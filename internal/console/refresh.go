package console

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// tokenPair is the API's answer to a login or a refresh.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
}

// refresher exchanges refresh tokens for new pairs. The API treats a
// refresh token presented twice as stolen and revokes the whole login, so
// the page and its polls, arriving together with the same old cookie, must
// not each refresh: one exchange runs per token (singleflight), and its
// answer is remembered for a minute for requests that arrive just after.
type refresher struct {
	c     *Console
	group singleflight.Group
	mu    sync.Mutex
	done  map[[32]byte]refreshed
}

// refreshed is a remembered exchange.
type refreshed struct {
	pair *tokenPair
	at   time.Time
}

// refreshMemory is how long an exchange's answer is remembered.
const refreshMemory = time.Minute

func newRefresher(c *Console) *refresher {
	return &refresher{c: c, done: map[[32]byte]refreshed{}}
}

// refresh replaces s's tokens with fresh ones.
func (f *refresher) refresh(r *http.Request, s *session) error {
	key := sha256.Sum256([]byte(s.Refresh))
	f.mu.Lock()
	now := time.Now()
	for k, v := range f.done {
		if now.Sub(v.at) > refreshMemory {
			delete(f.done, k)
		}
	}
	prev, ok := f.done[key]
	f.mu.Unlock()
	if ok {
		apply(s, prev.pair, prev.at)
		return nil
	}
	v, err, _ := f.group.Do(string(key[:]), func() (any, error) {
		var pair tokenPair
		err := f.c.callWith(r, "", http.MethodPost, "/v1/tenants/"+s.Tenant+"/auth/refresh",
			map[string]string{"refresh_token": s.Refresh}, &pair)
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.done[key] = refreshed{pair: &pair, at: time.Now()}
		f.mu.Unlock()
		return &pair, nil
	})
	if err != nil {
		return err
	}
	apply(s, v.(*tokenPair), time.Now())
	return nil
}

// apply puts a pair obtained at t into s.
func apply(s *session, p *tokenPair, t time.Time) {
	s.Credential = p.AccessToken
	s.Refresh = p.RefreshToken
	s.AccessExpires = t.Unix() + p.ExpiresIn
}
