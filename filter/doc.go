/*
Package filter's language, which every store backend implements with the same
results:

	filter  := or
	or      := and ( "||" and )*
	and     := primary ( "&&" primary )*
	primary := "(" or ")" | field op literal
	field   := [A-Za-z_][A-Za-z0-9_]*          (at most 64 characters)
	op      := "=" | "!=" | ">" | ">=" | "<" | "<=" | "~" | "^="
	literal := a JSON string (without \u0000), number, true, false or null

A filter is at most MaxLength characters (code points), holds at most MaxTerms comparisons and
nests parentheses at most MaxDepth deep; Parse reports anything else as a
*SyntaxError with the byte position.

Meaning, for a top-level data key (types are strict: 5 never equals "5"):

  - f = v is true when f holds a value of v's type equal to v. f = null is
    true when f is missing or JSON null.
  - f != v is exactly the negation of f = v, so it is also true when f is
    missing or holds another type.
  - f > v, >=, <, <= need a number or string literal and are true when f holds
    the same type and compares so. Strings compare by Unicode code point
    (bytewise UTF-8, no collation).
  - f ~ v needs a string literal and is true when f is a string containing v,
    case-sensitively.
  - f ^= v needs a string literal and is true when f is a string that starts
    with v, case-sensitively (code point by code point, like the ordering
    operators). Every string starts with "". Unlike ~, a prefix can be
    served by an index: the store compiles it to the range v <= f < v' on
    the field's sort key, where v' is the least string greater than every
    string starting with v.

System fields: id takes string literals only and compares as a string (^=
included); created_at and updated_at take RFC 3339 strings with at most
microsecond precision, which Parse turns into Time values, and do not take
~, ^= or null. The system fields shadow data keys of the same names.

Numbers compare as 64-bit floats (integers beyond 2^53 round). Whitespace
(space, tab, CR, LF) may separate tokens.

Order is "field", "+field" or "-field" (descending). Records sort by a total
key. For created_at, updated_at and id it is that column, then id. For a data
key it is (rank, number, text, id) where rank is 0 for missing or null, 1 for
booleans (false before true), 2 for numbers, 3 for strings, 4 for objects and
arrays; number is the numeric value (booleans as 0 or 1) and text the string
value, each zero when the rank does not use it.
*/
package filter
