package login

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters (RFC 9106).
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
	// SaltLength is the length of the random salt in bytes.
	SaltLength uint32
	// KeyLength is the length of the derived hash in bytes.
	KeyLength uint32
}

// DefaultParams returns OWASP's minimum recommended argon2id configuration:
// 19 MiB of memory, 2 passes, 1 thread, a 16-byte salt and a 32-byte hash.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLength: 16, KeyLength: 32}
}

// Bounds on the parameters Verify accepts from an encoded hash, so that a
// corrupt or hostile row cannot make one verification take gigabytes.
const (
	maxMemory  = 1 << 20 // KiB: 1 GiB
	maxTime    = 64
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// Hasher hashes and verifies passwords with argon2id. Each hash holds
// Params.Memory of RAM for its duration, so a Hasher runs at most
// runtime.NumCPU() of them at once and queues the rest. A Hasher is safe
// for concurrent use; make one with NewHasher.
type Hasher struct {
	params Params
	sem    chan struct{}
}

// NewHasher returns a Hasher that hashes new passwords with p. Zero fields
// of p take their value from DefaultParams.
func NewHasher(p Params) *Hasher {
	d := DefaultParams()
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLength == 0 {
		p.SaltLength = d.SaltLength
	}
	if p.KeyLength == 0 {
		p.KeyLength = d.KeyLength
	}
	return &Hasher{params: p, sem: make(chan struct{}, runtime.NumCPU())}
}

// Hash returns the PHC string of password under a fresh random salt, e.g.
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" with both parts in
// unpadded standard base64.
func (h *Hasher) Hash(password string) (string, error) {
	salt := make([]byte, h.params.SaltLength)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	key := h.derive([]byte(password), salt, h.params)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.params.Memory, h.params.Time, h.params.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded, a PHC string made by
// Hash (with any parameters within sane bounds). The comparison takes
// constant time. A malformed encoded hash is an error, not a mismatch.
func (h *Hasher) Verify(encoded, password string) (bool, error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	got := h.derive([]byte(password), salt, p)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// derive runs argon2id, holding one of the Hasher's slots.
func (h *Hasher) derive(password, salt []byte, p Params) []byte {
	if h.sem != nil { // nil only in a Hasher not made by NewHasher
		h.sem <- struct{}{}
		defer func() { <-h.sem }()
	}
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLength)
}

var errMalformedHash = errors.New("malformed argon2id hash")

// decodeHash parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
func decodeHash(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, fmt.Errorf("%w: want $argon2id$v=..$m=..,t=..,p=..$salt$hash", errMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, fmt.Errorf("%w: unsupported version %q", errMalformedHash, parts[2])
	}
	var p Params
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q", errMalformedHash, parts[3])
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return Params{}, nil, nil, fmt.Errorf("%w: parameters %q", errMalformedHash, parts[3])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return Params{}, nil, nil, fmt.Errorf("%w: parameter %s=%q", errMalformedHash, name, v)
		}
		switch name {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return Params{}, nil, nil, fmt.Errorf("%w: parameter p=%d", errMalformedHash, n)
			}
			p.Threads = uint8(n)
		}
	}
	if p.Memory > maxMemory || p.Time > maxTime || p.Memory < 8*uint32(p.Threads) {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q out of bounds", errMalformedHash, parts[3])
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return Params{}, nil, nil, fmt.Errorf("%w: salt", errMalformedHash)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return Params{}, nil, nil, fmt.Errorf("%w: hash", errMalformedHash)
	}
	p.SaltLength, p.KeyLength = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
