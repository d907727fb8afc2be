package decode

// WellFormed reports whether doc is well-formed BSON by the checks every
// delegated value passes (validate.go), for the fuzz and corpus tests: the
// driver is a reliable oracle only for such input.
func WellFormed(doc []byte) error {
	if err := checkTop(doc); err != nil {
		return err
	}
	return finish(validateDocument(doc, 0, len(doc), 0))
}
