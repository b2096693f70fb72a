package ui

import (
	"strconv"

	"github.com/kvreg/kvreg/refcount"
)

// The chart of the largest repositories is an SVG drawn here: one
// horizontal bar per repository, its length in proportion to the largest.
// Colours come from the stylesheet (classes), since the page's policy
// allows no inline style.

const (
	chartWidth = 720 // the drawing's width, in its own units
	labelWidth = 220 // left of the bars: the names
	valueWidth = 90  // right of the bars: the sizes
	barHeight  = 22
	barGap     = 8
)

type chart struct {
	Width, Height int
	Bars          []bar
}

type bar struct {
	Repo                 string
	Bytes                int64
	Y, TextY             int
	X, W, ValueX, LabelX string
}

func barChart(rows []refcount.RepoStat) chart {
	c := chart{Width: chartWidth, Height: len(rows)*(barHeight+barGap) + barGap}
	var max int64
	for _, r := range rows {
		if r.Bytes > max {
			max = r.Bytes
		}
	}
	span := float64(chartWidth - labelWidth - valueWidth)
	for i, r := range rows {
		w := 0.0
		if max > 0 {
			w = span * float64(r.Bytes) / float64(max)
		}
		if w < 1 && r.Bytes > 0 {
			w = 1 // a sliver, so that a small repository still shows
		}
		y := barGap + i*(barHeight+barGap)
		c.Bars = append(c.Bars, bar{
			Repo: r.Name, Bytes: r.Bytes, Y: y, TextY: y + barHeight/2 + 5,
			X: num(labelWidth), W: num(w), ValueX: num(labelWidth + w + 6), LabelX: num(labelWidth - 8),
		})
	}
	return c
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
