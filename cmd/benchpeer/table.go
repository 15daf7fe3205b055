package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// row is one figure of the side-by-side table: the same load measured
// against webconfd and against the peer. A figure a side did not produce
// (the peer cannot carry a load, a tool is missing) is NaN.
type row struct {
	Load   string  `json:"load"`
	Figure string  `json:"figure"`
	Unit   string  `json:"unit"`
	WC     float64 `json:"webconf"`
	Peer   float64 `json:"peer"`
	Note   string  `json:"note,omitempty"`
}

// rowMaker makes the rows of one load from both sides' results (nil: the
// side failed or was not run, its figures NaN).
func rowMaker[T any](load string, wc, peer *T) func(fig, unit string, f func(*T) float64) row {
	get := func(r *T, f func(*T) float64) float64 {
		if r == nil {
			return math.NaN()
		}
		return f(r)
	}
	return func(fig, unit string, f func(*T) float64) row {
		return row{Load: load, Figure: fig, Unit: unit, WC: get(wc, f), Peer: get(peer, f)}
	}
}

// ratio is peer / webconf, NaN when either side is missing or webconf's
// figure is 0.
func (r row) ratio() float64 {
	if math.IsNaN(r.WC) || math.IsNaN(r.Peer) || r.WC == 0 {
		return math.NaN()
	}
	return r.Peer / r.WC
}

// MarshalJSON writes missing figures as null (JSON has no NaN).
func (r row) MarshalJSON() ([]byte, error) {
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		Load   string   `json:"load"`
		Figure string   `json:"figure"`
		Unit   string   `json:"unit"`
		WC     *float64 `json:"webconf"`
		Peer   *float64 `json:"peer"`
		Ratio  *float64 `json:"peer_over_webconf"`
		Note   string   `json:"note,omitempty"`
	}{r.Load, r.Figure, r.Unit, num(r.WC), num(r.Peer), num(r.ratio()), r.Note})
}

// fmtNum prints a figure with three significant digits, thousands
// separated (1,136, 16.8, 0.412); a missing one as "-".
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case math.Abs(v) >= 1000:
		s := fmt.Sprintf("%.0f", math.Abs(v))
		var b strings.Builder
		if v < 0 {
			b.WriteByte('-')
		}
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case v == 0:
		return "0"
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// fmtRatio prints peer / webconf with two decimals.
func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

// printTable writes the rows as a Markdown table (it pastes into the
// README as it is): load | figure | webconf | peer | peer / webconf.
func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| load | figure | webconf | peer | peer / webconf |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	prev := ""
	for _, r := range rows {
		load := r.Load
		if load == prev {
			load = "" // a load's name once, on its first row
		}
		prev = r.Load
		fig := r.Figure
		if r.Unit != "" {
			fig += " (" + r.Unit + ")"
		}
		if r.Note != "" {
			fig += "; " + r.Note
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", load, fig, fmtNum(r.WC), fmtNum(r.Peer), fmtRatio(r.ratio()))
	}
}

func writeRowsJSON(path string, rows []row) error {
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return fmt.Errorf("encode table: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
