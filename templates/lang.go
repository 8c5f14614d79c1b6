package templates

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Lang is a language the pages are written in, by its ISO 639-1 code.
type Lang string

// The languages of the pages.
const (
	English Lang = "en"
	French  Lang = "fr"
	German  Lang = "de"
)

// Langs returns the languages of the pages, English, the default, first.
func Langs() []Lang { return []Lang{English, French, German} }

// catalogue holds every user-visible text of the pages, by language and
// key. A key ending in ".one" or ".other" is a form of a counted message
// (see N).
var catalogue = map[Lang]map[string]string{
	English: english,
	French:  french,
	German:  german,
}

// PickLang chooses the language of a page: the first supported language
// in uiLocales, the ui_locales of the authorization request the page
// serves (OpenID Connect Core 1.0 §3.1.2.1: BCP 47 tags separated by
// spaces, the preferred first); else the language r's Accept-Language
// weighs highest, the first listed among equals (RFC 9110 §12.5.4); else
// English. A region never matters: "fr-CA" is French.
func PickLang(r *http.Request, uiLocales string) Lang {
	for _, tag := range strings.Fields(uiLocales) {
		if l, ok := supported(tag); ok {
			return l
		}
	}
	best, bestQ := English, 0.0
	for _, entry := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(entry, ";")
		l, ok := supported(tag)
		if !ok {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(params)), "q="); ok {
			var err error
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		if q > bestQ {
			best, bestQ = l, q
		}
	}
	return best
}

// supported returns the language of a BCP 47 tag, if the pages have it.
func supported(tag string) (Lang, bool) {
	primary, _, _ := strings.Cut(strings.TrimSpace(tag), "-")
	l := Lang(strings.ToLower(primary))
	_, ok := catalogue[l]
	return l, ok
}

// T returns the message key in language l, its {placeholders} replaced by
// args, given as name, value pairs:
//
//	l.T("login.title_client", "client", "Sales dashboard")
//
// A missing key is returned as it is; a test makes sure none is missing.
func (l Lang) T(key string, args ...any) string { return l.format(key, args) }

// N returns the form of the counted message key that n takes in language l
// (key+".one" or key+".other"), with {n} replaced by n and the other
// placeholders by args as in T.
func (l Lang) N(key string, n int, args ...any) string {
	form := ".other"
	// CLDR plural rules: French counts 0 and 1 as one, English and German
	// only 1.
	if n == 1 || (n == 0 && l == French) {
		form = ".one"
	}
	return l.format(key+form, append([]any{"n", n}, args...))
}

func (l Lang) format(key string, args []any) string {
	msg, ok := catalogue[l][key]
	if !ok {
		return key
	}
	if len(args) == 0 {
		return msg
	}
	pairs := make([]string, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		pairs = append(pairs, "{"+fmt.Sprint(args[i])+"}", fmt.Sprint(args[i+1]))
	}
	// One pass: a value that looks like a placeholder stays as it is.
	return strings.NewReplacer(pairs...).Replace(msg)
}
