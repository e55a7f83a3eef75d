"""The ABI layer: C structs <-> Python values, CKRError -> CK_RV. Imports nothing from the store."""
