"""Reports for stakeholders: self-contained HTML files (and PDFs printed by Chromium).

:mod:`mltrainer.reports.html` holds the page shell, table formatting and PDF printing
shared by every report; :mod:`mltrainer.reports.stress_report` is the stress-test report.
"""
