package auth

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
)

// testParams keep argon2id fast in tests. Only the benchmark uses the
// defaults.
var testParams = PasswordParams{Memory: 64, Time: 1, Threads: 1}

func newTestPasswords(t testing.TB) *Passwords {
	t.Helper()
	return NewPasswords(testParams, HashLimits{Concurrent: 4})
}

// phc builds a PHC string from its parts.
func phc(params string, salt, key []byte) string {
	return "$argon2id$v=19$" + params + "$" + base64.RawStdEncoding.EncodeToString(salt) + "$" +
		base64.RawStdEncoding.EncodeToString(key)
}

func TestPasswordsHashFormat(t *testing.T) {
	t.Parallel()
	p := newTestPasswords(t)
	h1, err := p.Hash(t.Context(), testTenant, "correct horse battery")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h1) {
		t.Errorf("Hash = %q, want match for %s", h1, re)
	}
	h2, err := p.Hash(t.Context(), testTenant, "correct horse battery")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if h1 == h2 {
		t.Errorf("Hash twice = %q both times, want different salts", h1)
	}
}

func TestPasswordsVerify(t *testing.T) {
	t.Parallel()
	p := newTestPasswords(t)
	const pw = "correct horse battery"
	encoded, err := p.Hash(t.Context(), testTenant, pw)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	// A vector from the argon2 reference implementation (as used by
	// x/crypto/argon2's tests), with parameters, salt length and key length
	// all unlike ours: Verify must read them from the string.
	refKey, _ := hex.DecodeString("4668d30ac4187e6878eedeacf0fd83c5a0a30db2cc16ef0b")
	reference := phc("m=256,t=3,p=2", []byte("somesalt"), refKey)

	tests := []struct {
		name     string
		password string
		encoded  string
		want     bool
	}{
		{"Correct", pw, encoded, true},
		{"Wrong", "correct horse battery!", encoded, false},
		{"Empty", "", encoded, false},
		{"Prefix", pw[:len(pw)-1], encoded, false},
		{"Case", strings.ToUpper(pw), encoded, false},
		{"ReferenceVector", "password", reference, true},
		{"ReferenceVectorWrong", "Password", reference, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Verify(t.Context(), testTenant, tt.password, tt.encoded)
			if err != nil || got != tt.want {
				t.Errorf("Verify(%q, %q) = %v, %v; want %v, nil", tt.password, tt.encoded, got, err, tt.want)
			}
		})
	}
}

// Hashes made under old parameters keep verifying after the parameters
// change.
func TestPasswordsVerifyReadsParams(t *testing.T) {
	t.Parallel()
	old := NewPasswords(PasswordParams{Memory: 32, Time: 3, Threads: 2}, HashLimits{Concurrent: 1})
	encoded, err := old.Hash(t.Context(), testTenant, "a long enough password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if !strings.Contains(encoded, "$m=32,t=3,p=2$") {
		t.Fatalf("Hash = %q, want m=32,t=3,p=2", encoded)
	}
	current := newTestPasswords(t)
	if ok, err := current.Verify(t.Context(), testTenant, "a long enough password", encoded); !ok || err != nil {
		t.Errorf("Verify with other params = %v, %v; want true, nil", ok, err)
	}
	if !current.NeedsRehash(encoded) {
		t.Errorf("NeedsRehash(%q) = false, want true", encoded)
	}
}

func TestPasswordsVerifyMalformed(t *testing.T) {
	t.Parallel()
	p := newTestPasswords(t)
	salt := []byte("0123456789abcdef")
	key := make([]byte, 32)
	b64 := base64.RawStdEncoding.EncodeToString
	good := phc("m=64,t=1,p=1", salt, key)
	if _, err := p.Verify(t.Context(), testTenant, "x", good); err != nil {
		t.Fatalf("Verify(%q): %v; the fixture must be well formed", good, err)
	}
	tests := []struct {
		name    string
		encoded string
	}{
		{"Empty", ""},
		{"Plain", "hunter2hunter2"},
		{"Bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"Argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"UpperAlgorithm", strings.Replace(good, "argon2id", "ARGON2ID", 1)},
		{"Version16", strings.Replace(good, "v=19", "v=16", 1)},
		{"NoVersion", strings.Replace(good, "$v=19", "", 1)},
		{"NoLeadingDollar", good[1:]},
		{"ExtraField", good + "$x"},
		{"ParamsOrder", phc("t=1,m=64,p=1", salt, key)},
		{"ParamsMissing", phc("m=64,t=1", salt, key)},
		{"ParamsExtra", phc("m=64,t=1,p=1,keyid=x", salt, key)},
		{"ParamsSpaces", phc("m=64, t=1, p=1", salt, key)},
		{"LeadingZero", phc("m=064,t=1,p=1", salt, key)},
		{"PlusSign", phc("m=+64,t=1,p=1", salt, key)},
		{"Negative", phc("m=-64,t=1,p=1", salt, key)},
		{"Hex", phc("m=0x40,t=1,p=1", salt, key)},
		{"EmptyNumber", phc("m=,t=1,p=1", salt, key)},
		{"MemoryOverflow", phc("m=4294967296,t=1,p=1", salt, key)},
		{"MemoryTooLarge", phc("m=2097153,t=1,p=1", salt, key)},
		{"MemoryBelowThreads", phc("m=15,t=1,p=2", salt, key)},
		{"TimeZero", phc("m=64,t=0,p=1", salt, key)},
		{"TimeTooLarge", phc("m=64,t=65,p=1", salt, key)},
		{"ThreadsZero", phc("m=64,t=1,p=0", salt, key)},
		{"ThreadsOverflow", phc("m=4096,t=1,p=256", salt, key)},
		{"SaltPadded", "$argon2id$v=19$m=64,t=1,p=1$" + base64.StdEncoding.EncodeToString(salt) + "$" + b64(key)},
		{"SaltURLAlphabet", "$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("_", 22) + "$" + b64(key)},
		{"SaltTrailingBits", "$argon2id$v=19$m=64,t=1,p=1$" + b64(salt)[:21] + "B$" + b64(key)},
		{"SaltNewline", "$argon2id$v=19$m=64,t=1,p=1$" + b64(salt)[:10] + "\n" + b64(salt)[10:] + "$" + b64(key)},
		{"SaltTooShort", phc("m=64,t=1,p=1", salt[:7], key)},
		{"SaltTooLong", phc("m=64,t=1,p=1", make([]byte, 65), key)},
		{"SaltEmpty", phc("m=64,t=1,p=1", nil, key)},
		{"KeyTooShort", phc("m=64,t=1,p=1", salt, key[:15])},
		{"KeyTooLong", phc("m=64,t=1,p=1", salt, make([]byte, 65))},
		{"KeyNotBase64", "$argon2id$v=19$m=64,t=1,p=1$" + b64(salt) + "$not*base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, err := p.Verify(t.Context(), testTenant, "x", tt.encoded)
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("Verify(%q) = %v, %v; want false, ErrMalformedHash", tt.encoded, ok, err)
			}
			if !p.NeedsRehash(tt.encoded) {
				t.Errorf("NeedsRehash(%q) = false, want true", tt.encoded)
			}
		})
	}
}

func TestPasswordsNeedsRehash(t *testing.T) {
	t.Parallel()
	p := newTestPasswords(t)
	current, err := p.Hash(t.Context(), testTenant, "a long enough password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	salt, key := make([]byte, 16), make([]byte, 32)
	tests := []struct {
		name    string
		encoded string
		want    bool
	}{
		{"Current", current, false},
		{"SameParamsBuiltByHand", phc("m=64,t=1,p=1", salt, key), false},
		{"OtherMemory", phc("m=128,t=1,p=1", salt, key), true},
		{"OtherTime", phc("m=64,t=2,p=1", salt, key), true},
		{"OtherThreads", phc("m=64,t=1,p=2", salt, key), true},
		{"ShortSalt", phc("m=64,t=1,p=1", salt[:8], key), true},
		{"LongKey", phc("m=64,t=1,p=1", salt, make([]byte, 64)), true},
		{"Malformed", "nope", true},
	}
	for _, tt := range tests {
		if got := p.NeedsRehash(tt.encoded); got != tt.want {
			t.Errorf("%s: NeedsRehash(%q) = %v, want %v", tt.name, tt.encoded, got, tt.want)
		}
	}
}

// keyCall records one call of Passwords.keyFunc.
type keyCall struct {
	Password, Salt       string
	Time, Memory, KeyLen uint32
	Threads              uint8
}

// VerifyDummy must do the work of a Verify under the current parameters.
func TestPasswordsVerifyDummy(t *testing.T) {
	t.Parallel()
	p := NewPasswords(PasswordParams{Memory: 96, Time: 2, Threads: 3}, HashLimits{Concurrent: 1})
	var mu sync.Mutex
	var calls []keyCall
	argon := p.keyFunc
	p.keyFunc = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
		mu.Lock()
		calls = append(calls, keyCall{string(password), string(salt), time, memory, keyLen, threads})
		mu.Unlock()
		return argon(password, salt, time, memory, threads, keyLen)
	}
	encoded, err := p.Hash(t.Context(), testTenant, "pw")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if _, err := p.Verify(t.Context(), testTenant, "guess", encoded); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := p.VerifyDummy(t.Context(), testTenant, "guess"); err != nil {
		t.Fatalf("VerifyDummy: %v", err)
	}
	if len(calls) != 3 {
		t.Fatalf("keyFunc called %d times, want 3", len(calls))
	}
	verify, dummy := calls[1], calls[2]
	verify.Salt, dummy.Salt = "", "" // the only difference allowed
	if diff := cmp.Diff(verify, dummy); diff != "" {
		t.Errorf("VerifyDummy's argon2id call differs from Verify's (-verify +dummy):\n%s", diff)
	}
}

func TestPasswordsContextDone(t *testing.T) {
	t.Parallel()
	p := newTestPasswords(t)
	encoded, err := p.Hash(t.Context(), testTenant, "a long enough password")
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A slot is free, but a done context is refused before any hashing.
	if h, err := p.Hash(ctx, testTenant, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash(canceled) = %q, %v; want context.Canceled", h, err)
	}
	if ok, err := p.Verify(ctx, testTenant, "a long enough password", encoded); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify(canceled) = %v, %v; want false, context.Canceled", ok, err)
	}
	if err := p.VerifyDummy(ctx, testTenant, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyDummy(canceled) = %v, want context.Canceled", err)
	}
	// A malformed hash is reported as such even with a done context.
	if _, err := p.Verify(ctx, testTenant, "pw", "nope"); !errors.Is(err, ErrMalformedHash) {
		t.Errorf("Verify(canceled, malformed) = %v, want ErrMalformedHash", err)
	}
}

// The scheduler admits exactly maxConcurrent hashes; the rest wait, and a
// waiter whose context ends gives up without hashing. synctest makes this
// deterministic: synctest.Wait returns once every goroutine is blocked.
func TestPasswordsConcurrencyBound(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const maxConcurrent = 2
		p := NewPasswords(testParams, HashLimits{Concurrent: maxConcurrent, MaxWait: time.Hour})
		var (
			mu              sync.Mutex
			running, peak   int
			started, total  int
			unblock         = make(chan struct{})
			canceledWaiters = make(chan error, 1)
		)
		p.keyFunc = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
			mu.Lock()
			running++
			started++
			peak = max(peak, running)
			mu.Unlock()
			<-unblock
			mu.Lock()
			running--
			total++
			mu.Unlock()
			return make([]byte, keyLen)
		}

		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if _, err := p.Hash(context.Background(), testTenant, "pw"); err != nil {
					t.Errorf("Hash: %v", err)
				}
			})
		}
		synctest.Wait() // two hash, three wait
		mu.Lock()
		if started != maxConcurrent {
			t.Errorf("hashes started while blocked = %d, want %d", started, maxConcurrent)
		}
		mu.Unlock()

		// A waiter with a deadline: it must give up without hashing, shed.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		go func() {
			_, err := p.Hash(ctx, testTenant, "pw")
			canceledWaiters <- err
		}()
		time.Sleep(2 * time.Second) // fake time: the waiter's deadline passes
		if err := <-canceledWaiters; !errors.Is(err, fairq.ErrShed) {
			t.Errorf("Hash with expired deadline while slots are full = %v, want a shed", err)
		}

		close(unblock)
		wg.Wait()
		if peak != maxConcurrent || total != 5 {
			t.Errorf("peak concurrency %d and %d hashes done, want %d and 5", peak, total, maxConcurrent)
		}
	})
}

// TestPasswordsFairAcrossTenants: hashing turns go round the tenants that
// wait. A flood of logins at slugs that name no tenant (the zero tenant.ID)
// or at one tenant delays another tenant's hash by a turn, not by the flood,
// and past the bounded queue the flood is shed at once.
func TestPasswordsFairAcrossTenants(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := NewPasswords(testParams, HashLimits{Concurrent: 1, MaxQueue: 8, MaxWait: time.Hour})
		var mu sync.Mutex
		var order []string
		step := make(chan struct{})
		p.keyFunc = func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
			mu.Lock()
			order = append(order, string(password))
			mu.Unlock()
			<-step
			return make([]byte, keyLen)
		}
		var hashed sync.WaitGroup
		var shedCount int
		for range 20 { // the flood: 1 hashing, 8 queued, 11 shed at once
			go func() {
				err := p.VerifyDummy(context.Background(), "", "flood")
				if errors.Is(err, fairq.ErrShed) {
					mu.Lock()
					shedCount++
					mu.Unlock()
				}
			}()
		}
		synctest.Wait()
		mu.Lock()
		if shedCount != 11 {
			t.Errorf("%d of the flood's 20 hashes were shed at once, want 11 (1 running, 8 queued)", shedCount)
		}
		mu.Unlock()
		// The victim's hash pushes the flood's newest waiter out of the full
		// queue, and runs within the next two turns (the flood's turn may
		// have begun).
		hashed.Go(func() {
			if err := p.VerifyDummy(context.Background(), testTenant, "victim"); err != nil {
				t.Errorf("the victim's hash = %v", err)
			}
		})
		synctest.Wait()
		mu.Lock()
		if shedCount != 12 {
			t.Errorf("after the victim queued, %d of the flood's hashes were shed, want 12", shedCount)
		}
		mu.Unlock()
		for range 2 {
			step <- struct{}{}
			synctest.Wait()
		}
		mu.Lock()
		if !slices.Contains(order[1:], "victim") {
			t.Errorf("two turns after the victim queued, it had not run (order %q)", order)
		}
		mu.Unlock()
		close(step)
		hashed.Wait()
		synctest.Wait()
	})
}

func TestNewPasswords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		params        PasswordParams
		maxConcurrent int
		want          PasswordParams
		wantCap       int
	}{
		{"Zero", PasswordParams{}, 0, DefaultPasswordParams, max(1, runtime.GOMAXPROCS(0)/2)},
		{"ZeroFields", PasswordParams{Time: 3}, 2, PasswordParams{Memory: 19 * 1024, Time: 3, Threads: 1}, 2},
		{"Explicit", testParams, 1, testParams, 1},
		{"Negative", testParams, -1, testParams, max(1, runtime.GOMAXPROCS(0)/2)},
	}
	for _, tt := range tests {
		p := NewPasswords(tt.params, HashLimits{Concurrent: tt.maxConcurrent})
		if diff := cmp.Diff(tt.want, p.Params()); diff != "" {
			t.Errorf("%s: NewPasswords(%+v).Params() mismatch (-want +got):\n%s", tt.name, tt.params, diff)
		}
		if got := p.Stats().Slots; got != tt.wantCap {
			t.Errorf("%s: NewPasswords(_, %d) allows %d at once, want %d", tt.name, tt.maxConcurrent, got, tt.wantCap)
		}
	}
}

func TestPasswordParamsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		params    PasswordParams
		wantField string // "" for valid
	}{
		{DefaultPasswordParams, ""},
		{testParams, ""},
		{PasswordParams{Memory: MaxPasswordMemory, Time: MaxPasswordTime, Threads: 255}, ""},
		{PasswordParams{Memory: 64, Time: 1, Threads: 0}, "Threads"},
		{PasswordParams{Memory: 64, Time: 0, Threads: 1}, "Time"},
		{PasswordParams{Memory: 64, Time: MaxPasswordTime + 1, Threads: 1}, "Time"},
		{PasswordParams{Memory: 7, Time: 1, Threads: 1}, "Memory"},
		{PasswordParams{Memory: 31, Time: 1, Threads: 4}, "Memory"},
		{PasswordParams{Memory: MaxPasswordMemory + 1, Time: 1, Threads: 1}, "Memory"},
	}
	for _, tt := range tests {
		err := tt.params.Validate()
		switch {
		case tt.wantField == "" && err != nil:
			t.Errorf("%+v.Validate() = %v, want nil", tt.params, err)
		case tt.wantField != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantField)):
			t.Errorf("%+v.Validate() = %v, want an error naming %s", tt.params, err, tt.wantField)
		}
	}
}

func TestNewPasswordsInvalidPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Errorf("NewPasswords(Time: 1000) did not panic")
		}
	}()
	NewPasswords(PasswordParams{Time: 1000}, HashLimits{Concurrent: 1})
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pw      string
		wantErr string // "" for valid
	}{
		{"MinLength", strings.Repeat("a", 10), ""},
		{"MaxLength", strings.Repeat("a", 1024), ""},
		{"Unicode", "pässwörd-ünïcødé", ""},
		{"Spaces", "correct horse battery staple", ""},
		{"MinLengthInCharacters", strings.Repeat("é", 10), ""},
		{"MaxLengthInCharacters", strings.Repeat("😀", 1024), ""},
		{"Empty", "", "password must be at least 10 characters long"},
		{"TooShort", strings.Repeat("a", 9), "password must be at least 10 characters long"},
		{"TooShortInCharacters", strings.Repeat("é", 9), "password must be at least 10 characters long"},
		{"TooLong", strings.Repeat("a", 1025), "password must be at most 1024 characters long"},
		{"TooLongInCharacters", strings.Repeat("é", 1025), "password must be at most 1024 characters long"},
		{"InvalidUTF8", "abcdefghij\xff", "password must be valid UTF-8"},
		{"Surrogate", "abcdefghij\xed\xa0\x80", "password must be valid UTF-8"},
	}
	for _, tt := range tests {
		err := ValidatePassword(tt.pw)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: ValidatePassword(%q) = %v, want nil", tt.name, tt.pw, err)
			}
			continue
		}
		var pe *PasswordPolicyError
		if !errors.As(err, &pe) || err.Error() != tt.wantErr {
			t.Errorf("%s: ValidatePassword(%q) = %v, want *PasswordPolicyError %q", tt.name, tt.pw, err, tt.wantErr)
		}
	}
}

func BenchmarkPasswordHash(b *testing.B) {
	p := NewPasswords(DefaultPasswordParams, HashLimits{Concurrent: 1})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Hash(context.Background(), testTenant, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPasswordVerify(b *testing.B) {
	p := NewPasswords(DefaultPasswordParams, HashLimits{Concurrent: 1})
	encoded, err := p.Hash(context.Background(), testTenant, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := p.Verify(context.Background(), testTenant, "correct horse battery staple", encoded); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
