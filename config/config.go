package config

import (
	"errors"
	"strconv"
	"strings"
)

// FieldError is a problem with one setting of the configuration file.
type FieldError struct {
	// Path is the setting's JSON path: keys joined by dots, list elements as [i], and keys that are
	// not plain names as ["key"] (see MapKey). Empty means the document as a whole.
	Path string
	// Problem says what is wrong and, where it helps, what would be right.
	Problem string
	// Err, when set, is the cause, for errors.Is and errors.As (a package's sentinel such as
	// ops.ErrNotLoopback, or the error of a file that cannot be read). It is not part of the message.
	Err error
}

// Error returns Path + ": " + Problem (only Problem for the document as a whole).
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Problem
	}
	return e.Path + ": " + e.Problem
}

// Unwrap returns the cause, if any.
func (e *FieldError) Unwrap() error { return e.Err }

// Prefix re-roots the problems in err under prefix: each *FieldError, also inside errors.Join
// trees, gets prefix in front of its path ("tls_cert" under "smtp" is "smtp.tls_cert", "[0].domain"
// under "keys" is "keys[0].domain"). Any other error becomes a *FieldError at prefix with the error's
// text as its problem and the error as its cause. Prefix(prefix, nil) is nil.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	if fe, ok := err.(*FieldError); ok {
		return &FieldError{Path: join(prefix, fe.Path), Problem: fe.Problem, Err: fe.Err}
	}
	if errs := joined(err); errs != nil {
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = Prefix(prefix, e)
		}
		return errors.Join(out...)
	}
	return &FieldError{Path: prefix, Problem: err.Error(), Err: err}
}

// FieldErrors returns every *FieldError in err, in order, looking through wrapping and
// errors.Join trees (but not into a FieldError's own cause).
func FieldErrors(err error) []*FieldError {
	switch e := err.(type) {
	case nil:
		return nil
	case *FieldError:
		return []*FieldError{e}
	case interface{ Unwrap() []error }:
		var out []*FieldError
		for _, x := range e.Unwrap() {
			out = append(out, FieldErrors(x)...)
		}
		return out
	}
	return FieldErrors(errors.Unwrap(err))
}

// MapKey returns the path of key inside the object at path: path.key, or path["key"] when key is
// not a plain name (letters, digits, '_' and '-'), so that a key holding a dot stays one key.
func MapKey(path, key string) string {
	if plainName(key) {
		return join(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// join puts path under prefix.
func join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	}
	return prefix + "." + path
}

// joined returns the errors of an errors.Join, or nil for any other error. An error that merely
// wraps several (fmt.Errorf with two %w) keeps its own text, so it is not taken apart.
func joined(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	errs := j.Unwrap()
	texts := make([]string, len(errs))
	for i, e := range errs {
		texts[i] = e.Error()
	}
	if strings.Join(texts, "\n") != err.Error() {
		return nil
	}
	return errs
}
