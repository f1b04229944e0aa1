// Package units renders quantities for people: the daemon's status line
// and pacemakerctl's tables show sizes the same way.
package units

import (
	"fmt"
	"strconv"
)

// Bytes renders a size in binary units: 812 B, 1.2 KiB, 3.4 MiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
