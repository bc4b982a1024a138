-- Anyone may ask whether content is notarized (SPEC §7): the first
-- notarization of a hash, whosever it is, is found by this index rather
-- than by reading every stored file. Keep in step with the other
-- dialect's 0010_public_verify.sql (a test checks).
CREATE INDEX notary_files_notarized ON notary_files (sha256, leaf_index)
    WHERE leaf_index IS NOT NULL;
