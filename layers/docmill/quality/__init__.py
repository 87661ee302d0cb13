"""Quality of generated records, measured without an LLM: signals per record
(``docmill.quality.signals``) and the dataset report (``docmill.quality.report``)."""
