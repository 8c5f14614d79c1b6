// Package templates holds twostep's HTML pages, embedded in the binary, and
// renders them with the headers every page needs: a strict
// Content-Security-Policy (no scripts at all, no framing), no caching, no
// sniffing, no referrer.
package templates
