# Shared by the bench scripts (sourced, not run).

# The head of a gannet config for a benchmark: its hostname and its nine listeners on
# loopback, on ports BASE (SMTP) to BASE+8 (the admin console), in the order
# smtp, submission, submissions, pop3, pop3s, imap, imaps, web, admin. Sections for the
# benchmark's own settings follow it.
gannet_config_head() {
    local base=$1
    cat <<CONF
[server]
hostname = "mx.example.test"
[listen]
smtp = "127.0.0.1:$base"
submission = "127.0.0.1:$((base + 1))"
submissions = "127.0.0.1:$((base + 2))"
pop3 = "127.0.0.1:$((base + 3))"
pop3s = "127.0.0.1:$((base + 4))"
imap = "127.0.0.1:$((base + 5))"
imaps = "127.0.0.1:$((base + 6))"
web = "127.0.0.1:$((base + 7))"
admin = "127.0.0.1:$((base + 8))"
CONF
}
