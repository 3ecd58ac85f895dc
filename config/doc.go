// Package config gives sealpost's configuration file its meaning for the operator who edits it.
//
// Contract:
//   - Every problem with a setting is a *FieldError whose Path is the setting's place in the JSON
//     file (smtp.max_recipients, gateway.rules[0].class, gateway.policies.otp.lifetime) and whose
//     Problem says what is wrong in the file's words: never a Go type or field name.
//   - Decode and the components' Validate methods report every problem they find, joined with
//     errors.Join, not only the first: an operator fixes them all in one go.
//   - A component's Validate names keys relative to its own section ("tls_cert"); the command that
//     places the section in the file re-roots them with Prefix ("smtp.tls_cert").
//   - A file that is not JSON gives one *SyntaxError with the line and column of the problem.
package config
