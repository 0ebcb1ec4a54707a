"""Go duration parsing and formatting (contract §1.5c retryAfter, §1.1 reconciliationInterval).

Expected values were produced by Go 1.19's time.ParseDuration and Duration.String."""

import pytest

from bot.kratix.goduration import DurationError, format_nanos, parse_nanos

# (text, nanoseconds, Duration.String() of the result, Go's error or "")
GO = [
    ('1h30m', 5400000000000, '1h30m0s', ''),
    ('1.5h', 5400000000000, '1h30m0s', ''),
    ('-1m', -60000000000, '-1m0s', ''),
    ('+5s', 5000000000, '5s', ''),
    ('.5s', 500000000, '500ms', ''),
    ('5.s', 5000000000, '5s', ''),
    ('1µs', 1000, '1µs', ''),
    ('1μs', 1000, '1µs', ''),
    ('1us', 1000, '1µs', ''),
    ('300ms', 300000000, '300ms', ''),
    ('10m ', 0, '0s', 'time: unknown unit "m " in duration "10m "'),
    (' 10m', 0, '0s', 'time: invalid duration " 10m"'),
    ('1e3s', 0, '0s', 'time: unknown unit "e" in duration "1e3s"'),
    ('0', 0, '0s', ''),
    ('-0', 0, '0s', ''),
    ('+0', 0, '0s', ''),
    ('00', 0, '0s', 'time: missing unit in duration "00"'),
    ('0s', 0, '0s', ''),
    ('.s', 0, '0s', 'time: invalid duration ".s"'),
    ('1.', 0, '0s', 'time: missing unit in duration "1."'),
    ('9223372036854775807ns', 9223372036854775807, '2562047h47m16.854775807s', ''),
    ('9223372036854775808ns', 0, '0s', 'time: invalid duration "9223372036854775808ns"'),
    ('2562047h', 9223369200000000000, '2562047h0m0s', ''),
    ('2562048h', 0, '0s', 'time: invalid duration "2562048h"'),
    ('1h1x', 0, '0s', 'time: unknown unit "x" in duration "1h1x"'),
    ('10', 0, '0s', 'time: missing unit in duration "10"'),
    ('', 0, '0s', 'time: invalid duration ""'),
    ('-', 0, '0s', 'time: invalid duration "-"'),
    ('1.0000000001s', 1000000000, '1s', ''),
    ('0.3333333333h', 1199999999880, '19m59.99999988s', ''),
    ('1h0.5m', 3630000000000, '1h0m30s', ''),
    ('90s', 90000000000, '1m30s', ''),
    ('59.999s', 59999000000, '59.999s', ''),
    ('1.23456789ms', 1234567, '1.234567ms', ''),
    ('100ns', 100, '100ns', ''),
    ('3m', 180000000000, '3m0s', ''),
    ('25h', 90000000000000, '25h0m0s', ''),
    ('-1.5us', -1500, '-1.5µs', ''),
    ('1.1ms', 1100000, '1.1ms', ''),
]


@pytest.mark.parametrize("text, nanos, shown, error", GO)
def test_matches_go(text, nanos, shown, error):
    if error:
        with pytest.raises(DurationError) as exc:
            parse_nanos(text)
        assert str(exc.value) == error
    else:
        assert parse_nanos(text) == nanos
    assert format_nanos(nanos) == shown
