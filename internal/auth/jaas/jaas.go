// Package jaas reads Java JAAS login configuration files
// (java.security.auth.login.config), the file Storm keeps its Pacemaker
// credentials in: section PacemakerDigest (DIGEST), PacemakerServer and
// PacemakerClient (Kerberos).
//
// The grammar is Java's ConfigFile:
//
//	Name {
//	    module.Class Flag key="value" key=value;
//	};
//
// with // and /* */ comments. We also accept entries without a module class
// and flag (`PacemakerDigest { username="u" password="p"; };`), the form
// Storm's own documentation prints and its daemon rejects.
package jaas

import (
	"fmt"
	"os"
	"strings"
)

// File is a parsed JAAS file.
type File struct {
	Path     string
	Sections []*Section
}

// Section is one named login configuration ("application name").
type Section struct {
	Name    string
	Line    int
	Entries []Entry
}

// Entry is one login-module line of a section.
type Entry struct {
	Module string // "" in the module-less form
	Flag   string // required, requisite, sufficient, optional; "" when Module is ""
	// Options by key; keys are case-sensitive and a key given twice keeps
	// the last value, as in Java's option map.
	Options map[string]string
	Line    int
}

// Error is a syntax error at a position in a file.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// ParseFile reads and parses the JAAS file at path.
func ParseFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read jaas file: %w", err)
	}
	return Parse(path, data)
}

// Section returns the section called name, or nil. Names are matched
// exactly, as Java does.
func (f *File) Section(name string) *Section {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Option returns the value of key in the first entry that sets it.
func (s *Section) Option(key string) (string, bool) {
	for _, e := range s.Entries {
		if v, ok := e.Option(key); ok {
			return v, true
		}
	}
	return "", false
}

// Option returns the value of key in this entry.
func (e *Entry) Option(key string) (string, bool) {
	v, ok := e.Options[key]
	return v, ok
}

var flags = map[string]string{
	"required": "required", "requisite": "requisite", "sufficient": "sufficient", "optional": "optional",
}

// Parse parses JAAS text; name is used in error messages.
func Parse(name string, data []byte) (*File, error) {
	p := &parser{lx: lexer{file: name, src: data, line: 1, col: 1}}
	f := &File{Path: name}
	if err := p.file(f); err != nil {
		return nil, err
	}
	return f, nil
}

type parser struct {
	lx  lexer
	tok token
	// peeked holds one token of lookahead.
	peeked *token
}

func (p *parser) next() (token, error) {
	if p.peeked != nil {
		t := *p.peeked
		p.peeked = nil
		return t, nil
	}
	return p.lx.next()
}

func (p *parser) peek() (token, error) {
	if p.peeked == nil {
		t, err := p.lx.next()
		if err != nil {
			return t, err
		}
		p.peeked = &t
	}
	return *p.peeked, nil
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &Error{File: p.lx.file, Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) expect(kind tokenKind, what string) (token, error) {
	t, err := p.next()
	if err != nil {
		return t, err
	}
	if t.kind != kind {
		return t, p.errAt(t, "expected %s, found %s", what, t)
	}
	return t, nil
}

func (p *parser) file(f *File) error {
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		if t.kind == tokEOF {
			return nil
		}
		if t.kind != tokWord {
			return p.errAt(t, "expected a section name, found %s", t)
		}
		if prev := f.Section(t.text); prev != nil {
			return p.errAt(t, "section %s is defined twice (first at line %d)", t.text, prev.Line)
		}
		s := &Section{Name: t.text, Line: t.line}
		if _, err := p.expect(tokLBrace, `"{" after section name `+t.text); err != nil {
			return err
		}
		if err := p.section(s); err != nil {
			return err
		}
		f.Sections = append(f.Sections, s)
	}
}

// section parses entries up to and including "};".
func (p *parser) section(s *Section) error {
	for {
		t, err := p.peek()
		if err != nil {
			return err
		}
		if t.kind == tokRBrace {
			p.next()
			_, err := p.expect(tokSemi, `";" after "}" closing section `+s.Name)
			return err
		}
		if t.kind == tokEOF {
			return p.errAt(t, "section %s is not closed (missing \"};\")", s.Name)
		}
		e, err := p.entry(s)
		if err != nil {
			return err
		}
		s.Entries = append(s.Entries, e)
	}
}

// entry parses `Module Flag options;` or, module-less, `options;`.
func (p *parser) entry(s *Section) (Entry, error) {
	first, err := p.next()
	if err != nil {
		return Entry{}, err
	}
	if first.kind != tokWord {
		return Entry{}, p.errAt(first, "expected a login module class or an option in section %s, found %s", s.Name, first)
	}
	e := Entry{Line: first.line, Options: map[string]string{}}
	after, err := p.peek()
	if err != nil {
		return e, err
	}
	if after.kind == tokEquals {
		// Module-less form: the first word is already an option key.
		p.peeked = nil
		if err := p.optionValue(&e, first); err != nil {
			return e, err
		}
	} else {
		e.Module = first.text
		ft, err := p.expect(tokWord, "a control flag (required, requisite, sufficient or optional) after "+first.text)
		if err != nil {
			return e, err
		}
		flag, ok := flags[strings.ToLower(ft.text)]
		if !ok {
			return e, p.errAt(ft, "unknown control flag %q (want required, requisite, sufficient or optional)", ft.text)
		}
		e.Flag = flag
	}
	for {
		t, err := p.next()
		if err != nil {
			return e, err
		}
		switch t.kind {
		case tokSemi:
			return e, nil
		case tokWord:
			if _, err := p.expect(tokEquals, `"=" after option `+t.text); err != nil {
				return e, err
			}
			if err := p.optionValue(&e, t); err != nil {
				return e, err
			}
		case tokEOF, tokRBrace:
			return e, p.errAt(t, `expected ";" to end the entry begun at line %d, found %s`, e.Line, t)
		default:
			return e, p.errAt(t, "expected an option key or \";\", found %s", t)
		}
	}
}

// optionValue reads the value after key=.
func (p *parser) optionValue(e *Entry, key token) error {
	v, err := p.next()
	if err != nil {
		return err
	}
	if v.kind != tokWord && v.kind != tokString {
		return p.errAt(v, "expected a value for option %s, found %s", key.text, v)
	}
	e.Options[key.text] = v.text
	return nil
}

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokWord
	tokString
	tokLBrace
	tokRBrace
	tokSemi
	tokEquals
)

type token struct {
	kind      tokenKind
	text      string
	line, col int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokWord:
		return fmt.Sprintf("%q", t.text)
	case tokString:
		return fmt.Sprintf("string %q", t.text)
	case tokLBrace:
		return `"{"`
	case tokRBrace:
		return `"}"`
	case tokSemi:
		return `";"`
	case tokEquals:
		return `"="`
	}
	return "?"
}

type lexer struct {
	file      string
	src       []byte
	pos       int
	line, col int
}

func (l *lexer) advance() byte {
	c := l.src[l.pos]
	l.pos++
	if c == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	return c
}

func (l *lexer) errAt(line, col int, format string, args ...any) error {
	return &Error{File: l.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// skipSpace skips white space and comments.
func (l *lexer) skipSpace() error {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			l.advance()
		case c == '/' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '/':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.advance()
			}
		case c == '/' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '*':
			line, col := l.line, l.col
			l.advance()
			l.advance()
			for {
				if l.pos+1 >= len(l.src) {
					return l.errAt(line, col, "comment is not closed (missing \"*/\")")
				}
				if l.src[l.pos] == '*' && l.src[l.pos+1] == '/' {
					l.advance()
					l.advance()
					break
				}
				l.advance()
			}
		default:
			return nil
		}
	}
	return nil
}

func isWordByte(c byte) bool {
	switch c {
	case '{', '}', ';', '=', '"', ' ', '\t', '\n', '\r', '\f':
		return false
	}
	return c > ' ' && c != 0x7f
}

func (l *lexer) next() (token, error) {
	if err := l.skipSpace(); err != nil {
		return token{}, err
	}
	t := token{line: l.line, col: l.col}
	if l.pos >= len(l.src) {
		return t, nil
	}
	c := l.src[l.pos]
	switch c {
	case '{':
		l.advance()
		t.kind = tokLBrace
	case '}':
		l.advance()
		t.kind = tokRBrace
	case ';':
		l.advance()
		t.kind = tokSemi
	case '=':
		l.advance()
		t.kind = tokEquals
	case '"':
		s, err := l.quoted()
		if err != nil {
			return t, err
		}
		t.kind, t.text = tokString, s
	default:
		if !isWordByte(c) {
			return t, l.errAt(t.line, t.col, "unexpected character %q", c)
		}
		start := l.pos
		for l.pos < len(l.src) && isWordByte(l.src[l.pos]) {
			// A comment ends a word, as in Java's tokenizer.
			if l.src[l.pos] == '/' && l.pos+1 < len(l.src) && (l.src[l.pos+1] == '/' || l.src[l.pos+1] == '*') {
				break
			}
			l.advance()
		}
		t.kind, t.text = tokWord, string(l.src[start:l.pos])
	}
	return t, nil
}

// quoted reads a "..." string. Backslash escapes the next character, as in
// Java's tokenizer (\n, \t and \r mean what they do there); a string may not
// span lines.
func (l *lexer) quoted() (string, error) {
	line, col := l.line, l.col
	l.advance() // opening quote
	var b strings.Builder
	for {
		if l.pos >= len(l.src) || l.src[l.pos] == '\n' {
			return "", l.errAt(line, col, "string is not closed (missing '\"')")
		}
		c := l.advance()
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if l.pos >= len(l.src) || l.src[l.pos] == '\n' {
				return "", l.errAt(line, col, "string is not closed (missing '\"')")
			}
			switch e := l.advance(); e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
}
