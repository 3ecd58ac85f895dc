// Command sealpost is the bank's encrypted-mail gateway. "sealpost help" lists its commands and
// "sealpost help COMMAND" explains one; the table of commands is in cli.go.
//
// Errors are one line on stderr and a non-zero exit status (1 for a failure, 2 for a usage error);
// nothing is written to stdout unless the whole command succeeded. Help goes to stdout, exit 0.
package main
