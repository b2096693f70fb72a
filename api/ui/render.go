package ui

import (
	"embed"
	"html/template"
	"io"
	"time"
)

//go:embed templates
var templateFS embed.FS

// pageData is what every page's layout reads; Page is the page's own.
type pageData struct {
	Caller Caller
	Auth   bool
	CSRF   string
	Page   any
}

// pages holds one template set per page: the layout with that page's
// "title" and "content".
type pages map[string]*template.Template

var pageNames = []string{"repos", "repo", "manifest", "store", "confirm", "deleted", "message"}

var funcs = template.FuncMap{
	"human":       human,
	"grouped":     grouped,
	"count":       func(n int) string { return grouped(int64(n)) },
	"ago":         ago,
	"short":       shortDigest,
	"shortType":   shortType,
	"static":      staticURL,
	"deleteURL":   deleteURL,
	"artifact":    artifactType,
	"notZeroTime": func(t time.Time) bool { return !t.IsZero() },
	"rfc3339":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}

func mustParsePages() pages {
	p := pages{}
	for _, name := range pageNames {
		p[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return p
}

func (p pages) execute(w io.Writer, name string, data pageData) error {
	return p[name].ExecuteTemplate(w, "layout.html", data)
}
