// Package ui serves kvreg's web pages under /ui/: the repositories, a
// repository's tags, a manifest with what it references and what refers
// to it, the store's totals, and the delete of a tag, an image or a
// repository behind a confirmation that names the exact bytes it frees.
//
// The pages are rendered on the server with html/template; the stylesheet
// and the one script (progressive enhancement only: every page reads with
// JavaScript off) are embedded in the binary. ui owns the pages, their
// templates and assets, the CSRF check of the delete form, the chart and
// the human-readable figures. It reads the store only through refcount's
// reads and learns who the caller is and what the caller may do from
// package api, through Options; it must not import api, kv, blobs or a
// storage backend.
package ui
