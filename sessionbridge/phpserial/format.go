package phpserial

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// appendPHPFloat appends f the way PHP 8 serialize() writes it with the
// default serialize_precision=-1 (php_gcvt, mode 0): the shortest digits
// that round-trip; plain notation while the decimal exponent is in
// [-4, 17], else d.dddE+x with at least one fraction digit.
// Examples: 1 -> "1", 0.1 -> "0.1", 1e25 -> "1.0E+25", 1e-7 -> "1.0E-7",
// -0.0 -> "-0".
func appendPHPFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NAN"...)
	case math.IsInf(f, 1):
		return append(dst, "INF"...)
	case math.IsInf(f, -1):
		return append(dst, "-INF"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±xx
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	var digits [24]byte
	nd := 0
	i := 0
	for ; i < len(e) && e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits[nd] = e[i]
			nd++
		}
	}
	exp := atoiExp(e[i+1:])
	if nd == 1 && digits[0] == '0' {
		return append(dst, '0')
	}
	decpt := exp + 1 // value = 0.DIGITS * 10^decpt
	switch {
	case decpt < -3 || decpt > 17:
		dst = append(dst, digits[0], '.')
		if nd == 1 {
			dst = append(dst, '0')
		} else {
			dst = append(dst, digits[1:nd]...)
		}
		dst = append(dst, 'E')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	case decpt <= 0:
		dst = append(dst, '0', '.')
		for ; decpt < 0; decpt++ {
			dst = append(dst, '0')
		}
		return append(dst, digits[:nd]...)
	default:
		for j := 0; j < decpt; j++ {
			if j < nd {
				dst = append(dst, digits[j])
			} else {
				dst = append(dst, '0')
			}
		}
		if nd > decpt {
			dst = append(dst, '.')
			dst = append(dst, digits[decpt:nd]...)
		}
		return dst
	}
}

// appendJSONFloat appends a finite f as Python's repr() does, so that the
// text always reads back as a float (never as an int) in Python and PHP:
// shortest round-trip digits, plain notation with ".0" if needed while the
// exponent is in [-4, 16), else "1e+25" style.
func appendJSONFloat(dst []byte, f float64) []byte {
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±xx
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	var digits [24]byte
	nd, i := 0, 0
	for ; e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits[nd] = e[i]
			nd++
		}
	}
	exp := atoiExp(e[i+1:])
	switch {
	case exp < -4 || exp >= 16:
		return append(dst, e...)
	case exp < 0:
		dst = append(dst, '0', '.')
		for j := exp + 1; j < 0; j++ {
			dst = append(dst, '0')
		}
		return append(dst, digits[:nd]...)
	default:
		for j := 0; j <= exp; j++ {
			if j < nd {
				dst = append(dst, digits[j])
			} else {
				dst = append(dst, '0')
			}
		}
		dst = append(dst, '.')
		if nd > exp+1 {
			return append(dst, digits[exp+1:nd]...)
		}
		return append(dst, '0')
	}
}

// atoiExp parses the exponent strconv writes: [+-]digits.
func atoiExp(b []byte) int {
	neg := b[0] == '-'
	v := 0
	for _, c := range b[1:] {
		v = v*10 + int(c-'0')
	}
	if neg {
		return -v
	}
	return v
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s (valid UTF-8) as a JSON string. Only what JSON
// requires is escaped (quote, backslash, control characters); '<', '>',
// '&' and non-ASCII stay as they are, which keeps the output small.
func appendJSONString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	last := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[last:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		last = i + 1
	}
	dst = append(dst, s[last:]...)
	return append(dst, '"')
}

// validUTF8 is utf8.Valid with an ASCII fast path.
func validUTF8(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return utf8.Valid(s[i:])
		}
	}
	return true
}

func appendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }
