"""The pieces of the offline fact extractor (:mod:`engramdb.pipeline.extract_rules`): word lists,
clause reading, the predicate table, value cleaning and date wording."""
