"""What is known about baotintuc.vn itself: its categories and feeds.

Facts come from ``docs/site-structure.md`` (the real 2025 menus). The slug of a
category has changed over time, so categories are keyed on their numeric id.
"""

from __future__ import annotations

from dataclasses import dataclass

CANONICAL_ORIGIN = "https://baotintuc.vn"
CANONICAL_HOST = "baotintuc.vn"


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    slug: str
    name: str
    parent_id: int  # 0 for a top-level category

    @property
    def listing_path(self) -> str:
        """Page 1 of the category listing, e.g. ``/phap-luat-475ct0.htm``."""
        return f"/{self.slug}-{self.id}ct{self.parent_id}.htm"

    def listing_page_path(self, page: int) -> str:
        """Page ``page`` (1-based) of the listing; page 1 has no ``trang-`` suffix."""
        if page <= 1:
            return self.listing_path
        return f"/{self.slug}-{self.id}ct{self.parent_id}/trang-{page}.htm"

    @property
    def key(self) -> str:
        """The ``<slug>-<id>ct<parent>`` form used in URLs and in configuration."""
        return f"{self.slug}-{self.id}ct{self.parent_id}"


def _top(id_: int, slug: str, name: str) -> Category:
    return Category(id_, slug, name, 0)


# Top level (ct0), names as the site's menu and ``article:section`` print them.
TOP_LEVEL: tuple[Category, ...] = (
    _top(472, "thoi-su", "Thời sự"),
    _top(130, "the-gioi", "Thế giới"),
    _top(128, "kinh-te", "Kinh tế"),
    _top(129, "xa-hoi", "Xã hội"),
    _top(475, "phap-luat", "Pháp luật"),
    _top(158, "van-hoa", "Văn hóa"),
    _top(135, "giao-duc", "Giáo dục"),
    _top(273, "the-thao", "Thể thao"),
    _top(133, "ho-so", "Hồ sơ"),
    _top(514, "quan-su", "Quân sự"),
    _top(131, "khoa-hoc-cong-nghe", "Khoa học - Công nghệ"),
    _top(537, "bien-dao-viet-nam", "Biển đảo Việt Nam"),
    _top(564, "suc-khoe", "Y tế"),
    _top(529, "dia-phuong", "Địa phương"),
    _top(497, "goc-nhin", "Góc nhìn"),
    _top(583, "ban-doc", "Bạn đọc"),
    _top(545, "san-pham-dich-vu", "Sản phẩm - Dịch vụ"),
    _top(597, "giai-ma-muon-mat", "Giải mã muôn mặt"),
    _top(617, "anh-360", "Ảnh 360"),
)

# Sub-categories: (id, slug, name, parent id). Names not printed in the saved pages are
# the menu labels; where only the slug is evidenced the name is the slug's natural
# Vietnamese reading and pages' own ``article:section`` always wins at parse time.
SUB_CATEGORIES: tuple[Category, ...] = tuple(
    Category(i, s, n, p)
    for i, s, n, p in (
        (321, "chinh-tri", "Chính trị", 472),
        (473, "phan-hoi-phan-bien", "Phản hồi - Phản biện", 472),
        (589, "chinh-phu-voi-nguoi-dan", "Chính phủ với người dân", 472),
        (603, "chinh-sach-va-cuoc-song", "Chính sách và cuộc sống", 472),
        (1622, "viet-nam-ky-nguyen-moi", "Việt Nam kỷ nguyên mới", 472),
        (1623, "xay-dung-dang", "Xây dựng Đảng", 472),
        (162, "chuyen-la-the-gioi", "Chuyện lạ thế giới", 130),
        (478, "nguoi-viet-4-phuong", "Người Việt 4 phương", 130),
        (525, "phan-tich-nhan-dinh", "Phân tích - Nhận định", 130),
        (144, "bat-dong-san", "Bất động sản", 128),
        (145, "doanh-nghiep-doanh-nhan", "Doanh nghiệp - Doanh nhân", 128),
        (147, "nguoi-tieu-dung", "Người tiêu dùng", 128),
        (587, "thi-truong-tai-chinh", "Thị trường tài chính", 128),
        (606, "tai-chinh-ngan-hang", "Tài chính - Ngân hàng", 128),
        (149, "van-de-quan-tam", "Vấn đề quan tâm", 129),
        (581, "phong-su-dieu-tra", "Phóng sự - Điều tra", 129),
        (588, "nguoi-tot-viec-tot", "Người tốt việc tốt", 129),
        (591, "chinh-sach-bhxh-bhyt", "Chính sách BHXH - BHYT", 129),
        (604, "mang-xa-hoi", "Mạng xã hội", 129),
        (577, "van-ban-moi", "Văn bản mới", 475),
        (579, "an-ninh-trat-tu", "An ninh trật tự", 475),
        (590, "chong-buon-lau-hang-gia", "Chống buôn lậu - hàng giả", 475),
        (607, "don-thu-ban-doc", "Đơn thư bạn đọc", 475),
        (132, "du-lich", "Du lịch", 158),
        (272, "doi-song-van-hoa", "Đời sống văn hóa", 158),
        (274, "giai-tri-sao", "Giải trí - Sao", 158),
        (487, "sang-tac", "Sáng tác", 158),
        (576, "am-thuc", "Ẩm thực", 158),
        (311, "ban-tron-giao-duc", "Bàn tròn giáo dục", 135),
        (325, "tuyen-sinh", "Tuyển sinh", 135),
        (480, "du-hoc", "Du học", 135),
        (605, "tu-van", "Tư vấn", 135),
        (547, "bong-da", "Bóng đá", 273),
        (548, "the-thao-24h", "Thể thao 24h", 273),
        (549, "tennis", "Tennis", 273),
        (582, "chuyen-the-thao", "Chuyện thể thao", 273),
        (541, "giai-mat", "Giải mật", 133),
        (561, "the-gioi-bi-an", "Thế giới bí ẩn", 133),
        (562, "dau-an-su-kien", "Dấu ấn sự kiện", 133),
        (563, "vu-an-noi-tieng", "Vụ án nổi tiếng", 133),
        (556, "ho-so-quan-su", "Hồ sơ quân sự", 514),
        (557, "vu-khi-khi-tai", "Vũ khí - Khí tài", 514),
        (592, "tap-tran-dien-tap", "Tập trận - Diễn tập", 514),
        (593, "quoc-phong", "Quốc phòng", 514),
        (491, "o-to-xe-may", "Ô tô - Xe máy", 131),
        (492, "dien-tu-vien-thong", "Điện tử - Viễn thông", 131),
        (515, "khoa-hoc-doi-song", "Khoa học - Đời sống", 131),
        (538, "bao-ve-chu-quyen", "Bảo vệ chủ quyền", 537),
        (574, "kinh-te-bien-dao", "Kinh tế biển đảo", 537),
        (596, "hoi-dap-luat-canh-sat-bien", "Hỏi đáp Luật Cảnh sát biển", 537),
        (566, "gioi-tinh", "Giới tính", 564),
        (609, "chinh-sach", "Chính sách", 564),
        (610, "dich-benh", "Dịch bệnh", 564),
        (611, "benh-vien-bac-si", "Bệnh viện - Bác sĩ", 564),
        (550, "tay-bac-tay-nguyen-tay-nam-bo", "Tây Bắc - Tây Nguyên - Tây Nam Bộ", 529),
        (612, "ha-noi", "Hà Nội", 529),
        (613, "tp-ho-chi-minh", "TP Hồ Chí Minh", 529),
        (614, "da-nang", "Đà Nẵng", 529),
    )
)

ALL_CATEGORIES: tuple[Category, ...] = TOP_LEVEL + SUB_CATEGORIES
CATEGORIES_BY_ID: dict[int, Category] = {c.id: c for c in ALL_CATEGORIES}
CATEGORIES_BY_SLUG: dict[str, Category] = {c.slug: c for c in ALL_CATEGORIES}

# Feeds named in other scrapers' code; the spider also reads ``/rss.htm`` for the rest.
KNOWN_FEEDS: tuple[str, ...] = ("tin-moi-nhat",) + tuple(c.slug for c in TOP_LEVEL) + ("chinh-tri",)


def category_by_key(key: str) -> Category | None:
    """Look a category up by ``slug``, ``<slug>-<id>ct<parent>`` or numeric id."""
    key = key.strip().lower()
    if key.isdigit():
        return CATEGORIES_BY_ID.get(int(key))
    if key in CATEGORIES_BY_SLUG:
        return CATEGORIES_BY_SLUG[key]
    for cat in ALL_CATEGORIES:
        if cat.key == key:
            return cat
    return None
