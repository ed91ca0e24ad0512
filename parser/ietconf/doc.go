// Package ietconf is the participle/v2 grammar of IET's ietd.conf.
//
// The file is line oriented. A line is blank, a comment (its first token
// starts with '#'), or a directive: a keyword (matched case-insensitively,
// as IET does with strcasecmp) followed by whitespace-separated words.
// There is no quoting and no line continuation (a trailing backslash stays
// in the word, as in every IET release). A '#' word after the keyword is
// treated as the start of a trailing comment.
//
// Lun lines keep the raw rest of the line, split into comma-separated
// Key=Value parameters (1.4.x form) or, when no '=' is present, into the
// 0.4.x positional form "Lun 0 /dev/sdb fileio".
//
// The parser checks syntax only and reports every problem of the file in one
// pass with its file:line:col; package compat gives the tree its meaning.
package ietconf
