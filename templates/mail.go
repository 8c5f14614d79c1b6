package templates

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"
)

// Mail is a rendered mail: its subject, plain-text body and HTML body.
type Mail struct {
	Subject string
	Text    string
	HTML    string
}

// mailSet is the mail templates of one language: mail/NAME.txt parsed as
// text, mail/NAME.html as HTML.
type mailSet struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// parseMail parses the embedded mail templates for language l, with the
// pages' functions t, tn, lang and brand.
func parseMail(l Lang, brand string) (mailSet, error) {
	funcs := map[string]any{
		"t":     l.T,
		"tn":    l.N,
		"lang":  func() Lang { return l },
		"brand": func() string { return brand },
	}
	text, err := texttemplate.New("").Funcs(funcs).ParseFS(files, "mail/*.txt")
	if err != nil {
		return mailSet{}, fmt.Errorf("parse mail text: %w", err)
	}
	html, err := htmltemplate.New("").Funcs(funcs).ParseFS(files, "mail/*.html")
	if err != nil {
		return mailSet{}, fmt.Errorf("parse mail html: %w", err)
	}
	return mailSet{text: text, html: html}, nil
}

// Mail renders the mail `name` in language l: mail/NAME.txt and
// mail/NAME.html with data, under the subject "mail.NAME.subject" (a
// message whose only value is {brand}).
func (p *Pages) Mail(l Lang, name string, data any) (Mail, error) {
	set, ok := p.mail[l]
	if !ok {
		set = p.mail[English]
	}
	var text, html bytes.Buffer
	if err := set.text.ExecuteTemplate(&text, name+".txt", data); err != nil {
		return Mail{}, fmt.Errorf("render mail %s: %w", name, err)
	}
	if err := set.html.ExecuteTemplate(&html, name+".html", data); err != nil {
		return Mail{}, fmt.Errorf("render mail %s: %w", name, err)
	}
	return Mail{Subject: l.T("mail."+name+".subject", "brand", p.brand), Text: text.String(), HTML: html.String()}, nil
}
