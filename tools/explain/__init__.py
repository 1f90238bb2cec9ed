"""Words for segments and recommendations: names and descriptions from evidence, their wording and quality, describe and compare, and the verified evidence behind a recommendation."""
