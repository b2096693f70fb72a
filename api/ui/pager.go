package ui

import (
	"net/url"
	"strconv"
)

// pager is a page number of a list and the links around it.
type pager struct {
	Page, Pages int
	Prev, Next  string // links, "" when none
}

// pageNumber reads ?page= (1-based; anything else is page 1).
func pageNumber(v url.Values) int {
	n, err := strconv.Atoi(v.Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// newPager links the pages of total rows, per a page, keeping the other
// query values (the search) in the links.
func newPager(base string, keep url.Values, page, per, total int) pager {
	pages := (total + per - 1) / per
	if pages < 1 {
		pages = 1
	}
	p := pager{Page: page, Pages: pages}
	link := func(n int) string {
		v := url.Values{}
		for k, vs := range keep {
			if len(vs) > 0 && vs[0] != "" {
				v.Set(k, vs[0])
			}
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	if page > 1 {
		p.Prev = link(min(page-1, pages))
	}
	if page < pages {
		p.Next = link(page + 1)
	}
	return p
}
