package export

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// appendJSON appends v as encoding/json would marshal it (keys sorted,
// the same string escaping but for HTML characters, which are left
// alone) for the types the ECS and OCSF mappers build; other types go
// through encoding/json. encoding/json's map encoder — reflection and a
// sort of reflect values per object — was most of the ECS and OCSF cost.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return b, &json.UnsupportedValueError{Str: strconv.FormatFloat(x, 'g', -1, 64)}
		}
		// encoding/json's format: no exponent between 1e-6 and 1e21.
		if a := math.Abs(x); a != 0 && (a < 1e-6 || a >= 1e21) {
			n := len(b)
			b = strconv.AppendFloat(b, x, 'e', -1, 64)
			// clean up e-09 to e-9, as encoding/json does
			if m := len(b) - n; m >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
				b[len(b)-2] = b[len(b)-1]
				b = b[:len(b)-1]
			}
			return b, nil
		}
		return strconv.AppendFloat(b, x, 'f', -1, 64), nil
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		return append(b, ']'), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		var arr [32]string
		keys := arr[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, x[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case []map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, o := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, o); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// appendJSONString quotes s as encoding/json does, except that <, > and &
// are not escaped: invalid UTF-8 becomes U+FFFD, control characters and
// U+2028/U+2029 are escaped.
func appendJSONString(b []byte, s string) []byte { return event.AppendString(b, s, false) }

// OCSFJSON is the item's OCSF event as JSON.
func OCSFJSON(it *Item) ([]byte, error) { return appendJSON(nil, OCSF(it)) }

// ECSJSON is the item's ECS document as JSON.
func ECSJSON(it *Item) ([]byte, error) { return appendJSON(nil, ECS(it)) }
