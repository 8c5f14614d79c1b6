// Package templates holds twostep's HTML pages and their stylesheet,
// embedded in the binary, and renders them with the headers every page
// needs: a strict Content-Security-Policy (no scripts, styles only from
// the stylesheet, no framing), no caching, no sniffing, no referrer. The
// one exception is the form_post page (FormPost), whose policy allows the
// single script that submits its form, by its hash.
//
// Every word the pages show comes from its message catalogue, in English,
// French and German (messages_*.go): templates call {{t "key"}}, Go code
// Lang.T and Lang.N, and PickLang chooses the language of a request from
// the authorization request's ui_locales and the browser's
// Accept-Language. A Brand, set once at Parse, gives every page its name
// and logo.
package templates
