-- Accent- and case-insensitive folding for Vietnamese search.
-- vn_fold('Dân Vận') = 'dan van'; 'hoà' and 'hòa' (old/new tone placement) both fold to
-- 'hoa'. nfc_normalize first so decomposed input folds the same; đ is a letter of its
-- own (not a base letter + accent), so it is mapped by hand.
create or replace macro vn_fold(s) as
    strip_accents(replace(lower(nfc_normalize(s)), 'đ', 'd'));
