package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trustedProxies are the reverse proxies in front of twostep. Only a
// request whose TCP peer is one of them has its X-Forwarded-For believed;
// anyone else could write any address there and dodge the per-address
// throttle or blame someone else in the audit log.
type trustedProxies []netip.Prefix

// parseTrustedProxies parses "10.0.0.0/8,192.0.2.7,2001:db8::/32": CIDR
// prefixes or single addresses.
func parseTrustedProxies(s string) (trustedProxies, error) {
	var out trustedProxies
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is neither an address nor a CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// unmappedBits is the prefix length of p once an IPv4-mapped address is
// written as IPv4 (::ffff:10.0.0.0/104 is 10.0.0.0/8).
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return max(p.Bits()-96, 0)
	}
	return p.Bits()
}

// trusts reports whether a is one of the proxies.
func (t trustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is r.RemoteAddr, or, when the TCP peer is a trusted proxy,
// the client address X-Forwarded-For names: walking the list from the
// right (the entry the nearest proxy added), the first address that is
// not itself a trusted proxy. An entry that is not an address stops the
// walk at the last trusted hop; if every entry is trusted, the leftmost
// is the client.
func (t trustedProxies) clientAddr(r *http.Request) string {
	if len(t) == 0 {
		return r.RemoteAddr
	}
	peer, err := netip.ParseAddr(hostOf(r.RemoteAddr))
	if err != nil || !t.trusts(peer) {
		return r.RemoteAddr
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	if len(hops) == 0 {
		return r.RemoteAddr
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !t.trusts(a) {
			break
		}
	}
	if client == peer {
		return r.RemoteAddr
	}
	return net.JoinHostPort(client.Unmap().String(), "0")
}

// parseHop parses one X-Forwarded-For entry: an address, possibly with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711") as some proxies write.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone(""), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.WithZone(""), true
	}
	return netip.Addr{}, false
}
