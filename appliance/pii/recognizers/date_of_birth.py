import datetime as dt

import regex

from appliance.pii.recognizers.base import NOT_DIGIT_AFTER, NOT_DIGIT_BEFORE, BankPatternRecognizer, ascii_digits

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|" \
          "september|october|november|december"


class DateOfBirthRecognizer(BankPatternRecognizer):
    """Dates of birth: a date is only a birth date by context (出生, 生日, DOB, born), so the patterns score low."""

    ENTITY = "DATE_OF_BIRTH"
    PATTERNS = [
        ("ymd", NOT_DIGIT_BEFORE + r"(?:19|20)\d{2}(?:[-/.]|年)[0-1]?\d(?:[-/.]|月)[0-3]?\d日?" + NOT_DIGIT_AFTER, 0.1),
        ("dmy", NOT_DIGIT_BEFORE + r"[0-3]?\d[/.][0-1]?\d[/.](?:19|20)\d{2}" + NOT_DIGIT_AFTER, 0.1),
        ("text", rf"(?i:\b[0-3]?\d(?:st|nd|rd|th)? (?:{_MONTHS}),? (?:19|20)\d{{2}}\b|\b(?:{_MONTHS}) [0-3]?\d(?:st|nd|rd|th)?,? "
                 r"(?:19|20)\d{2}\b)", 0.1),
    ]
    CONTEXT = ["出生", "生日", "出生日期", "出生年月", "生于", "dob", "d.o.b", "date of birth", "born", "birthday",
               "birth date"]

    def validate_result(self, pattern_text: str):
        if regex.search(r"[A-Za-z]", pattern_text):
            return None
        digits = ascii_digits(pattern_text)
        numbers = [int(n) for n in regex.findall(r"\d+", pattern_text)]
        if len(numbers) != 3 or not digits:
            return False
        year, month, day = (numbers if numbers[0] > 31 else (numbers[2], numbers[1], numbers[0]))
        try:
            born = dt.date(year, month, day)
        except ValueError:
            return False
        return None if dt.date(1900, 1, 1) <= born <= dt.date.today() else False
