"""Vietnamese raw material for synthetic articles: real paragraphs plus small word lists.

Paragraphs come from the real 2025 pages and the seed article; titles, sapos, names and
captions are recombined from the lists below. Nothing here is random: the generator picks
with a seeded ``random.Random``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from mirror.sources import SourcePage
from mirror.text import collapse

PROVINCES = (
    "Tây Ninh",
    "Đồng Nai",
    "Ninh Bình",
    "Nghệ An",
    "Thanh Hóa",
    "Quảng Ninh",
    "Hải Phòng",
    "Lâm Đồng",
    "Đắk Lắk",
    "Gia Lai",
    "Cần Thơ",
    "An Giang",
    "Cà Mau",
    "Huế",
    "Quảng Ngãi",
    "Khánh Hòa",
    "Lào Cai",
    "Tuyên Quang",
    "Phú Thọ",
    "Bắc Ninh",
    "Hưng Yên",
    "Vĩnh Long",
    "Đồng Tháp",
    "Sơn La",
    "Điện Biên",
    "Lai Châu",
    "Cao Bằng",
    "Lạng Sơn",
    "Thái Nguyên",
    "Hà Tĩnh",
    "Quảng Trị",
    "Hà Nội",
    "TP Hồ Chí Minh",
    "Đà Nẵng",
)

# Per top-level category id: (events for titles, sub-headings, list items).
TOPICS: dict[int, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    475: (
        (
            "Khởi tố vụ án lừa đảo chiếm đoạt tài sản",
            "Bắt giữ đối tượng vận chuyển hàng cấm",
            "Triệt phá đường dây đánh bạc qua mạng",
            "Xét xử vụ án tham ô tài sản",
            "Tạm giữ nhóm đối tượng gây rối trật tự công cộng",
            "Phát hiện kho hàng giả quy mô lớn",
            "Điều tra vụ cháy nhà xưởng",
            "Xử phạt cơ sở kinh doanh vi phạm",
        ),
        ("Diễn biến vụ việc", "Kết quả điều tra ban đầu", "Cảnh báo thủ đoạn mới"),
        (
            "Tạm giữ tang vật, phương tiện liên quan",
            "Lập biên bản vi phạm hành chính",
            "Chuyển hồ sơ cho cơ quan điều tra",
            "Tuyên truyền, cảnh báo người dân",
        ),
    ),
    472: (
        (
            "Đẩy mạnh cải cách thủ tục hành chính",
            "Tổng kết công tác dân vận",
            "Triển khai nghị quyết về phát triển kinh tế",
            "Kiểm tra công tác xây dựng Đảng",
            "Tiếp xúc cử tri trước kỳ họp",
            "Sắp xếp tổ chức bộ máy chính quyền địa phương",
        ),
        ("Những kết quả nổi bật", "Nhiệm vụ trọng tâm thời gian tới", "Kiến nghị của địa phương"),
        (
            "Nâng cao chất lượng phục vụ người dân",
            "Tăng cường kỷ luật, kỷ cương hành chính",
            "Phát huy dân chủ ở cơ sở",
            "Đẩy nhanh chuyển đổi số",
        ),
    ),
    130: (
        (
            "Hội nghị thượng đỉnh bàn về an ninh khu vực",
            "Nhiều nước thúc đẩy hợp tác thương mại",
            "Thiên tai gây thiệt hại nặng nề",
            "Bầu cử sớm được tổ chức",
            "Giá năng lượng biến động mạnh",
        ),
        ("Phản ứng của cộng đồng quốc tế", "Tác động tới kinh tế khu vực"),
        ("Tăng cường đối thoại", "Hỗ trợ nhân đạo khẩn cấp", "Ổn định chuỗi cung ứng"),
    ),
    128: (
        (
            "Xuất khẩu nông sản tăng trưởng tích cực",
            "Doanh nghiệp đẩy mạnh chuyển đổi xanh",
            "Thị trường bất động sản có dấu hiệu phục hồi",
            "Ngân hàng giảm lãi suất cho vay",
            "Giải ngân vốn đầu tư công đạt kết quả khả quan",
        ),
        ("Tín hiệu tích cực", "Những khó khăn còn tồn tại", "Giải pháp thúc đẩy tăng trưởng"),
        (
            "Đơn giản hóa thủ tục đầu tư",
            "Mở rộng thị trường xuất khẩu",
            "Hỗ trợ doanh nghiệp nhỏ và vừa",
        ),
    ),
    129: (
        (
            "Chăm lo đời sống người lao động",
            "Hỗ trợ người dân vùng lũ ổn định cuộc sống",
            "Nâng cao chất lượng dịch vụ công",
            "Bảo đảm an toàn giao thông dịp cao điểm",
        ),
        ("Câu chuyện từ cơ sở", "Ý kiến người dân"),
        ("Tặng quà gia đình chính sách", "Sửa chữa nhà ở cho hộ nghèo", "Tạo việc làm mới"),
    ),
    158: (
        (
            "Lễ hội truyền thống thu hút đông đảo du khách",
            "Phát triển du lịch cộng đồng",
            "Bảo tồn di sản văn hóa phi vật thể",
            "Quảng bá ẩm thực địa phương",
        ),
        ("Giá trị văn hóa đặc sắc", "Sản phẩm du lịch mới"),
        ("Trải nghiệm làng nghề", "Thưởng thức đặc sản", "Tham quan di tích lịch sử"),
    ),
    135: (
        (
            "Công bố điểm chuẩn xét tuyển đại học",
            "Chuẩn bị cho năm học mới",
            "Đổi mới phương pháp dạy học",
            "Thí sinh hoàn tất đăng ký nguyện vọng",
        ),
        ("Lưu ý cho thí sinh", "Chỉ tiêu tuyển sinh"),
        ("Kiểm tra hồ sơ đăng ký", "Theo dõi lịch công bố kết quả", "Chuẩn bị giấy tờ nhập học"),
    ),
    273: (
        (
            "Đội tuyển giành chiến thắng thuyết phục",
            "Giải đấu khép lại với nhiều bất ngờ",
            "Vận động viên trẻ lập kỷ lục mới",
            "Câu lạc bộ chiêu mộ tân binh",
        ),
        ("Diễn biến trận đấu", "Mục tiêu sắp tới"),
        ("Tăng cường tập luyện thể lực", "Rèn luyện chiến thuật", "Bổ sung lực lượng trẻ"),
    ),
    564: (
        (
            "Chủ động phòng chống dịch bệnh mùa mưa",
            "Bệnh viện triển khai kỹ thuật điều trị mới",
            "Tiêm chủng mở rộng cho trẻ em",
            "Cảnh báo ngộ độc thực phẩm",
        ),
        ("Khuyến cáo của ngành y tế", "Tình hình điều trị"),
        ("Rửa tay thường xuyên", "Ăn chín, uống sôi", "Đến cơ sở y tế khi có triệu chứng"),
    ),
    131: (
        (
            "Ứng dụng trí tuệ nhân tạo trong quản lý",
            "Phát triển hạ tầng số",
            "Nghiên cứu giống cây trồng chịu hạn",
            "Cảnh báo lừa đảo trực tuyến",
        ),
        ("Hiệu quả bước đầu", "Thách thức đặt ra"),
        ("Bảo vệ thông tin cá nhân", "Cập nhật phần mềm thường xuyên", "Xác thực hai lớp"),
    ),
    529: (
        (
            "Khánh thành công trình giao thông trọng điểm",
            "Chỉnh trang đô thị",
            "Đưa vào sử dụng trường học mới",
            "Ra quân làm sạch môi trường",
        ),
        ("Ý nghĩa của công trình", "Kế hoạch tiếp theo"),
        ("Mở rộng tuyến đường", "Trồng thêm cây xanh", "Lắp đặt hệ thống chiếu sáng"),
    ),
}

ORGS = (
    "Công an tỉnh",
    "Ủy ban nhân dân tỉnh",
    "Sở Y tế",
    "Sở Giáo dục và Đào tạo",
    "Ban Chỉ huy Bộ đội Biên phòng",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Cục Thống kê",
)

REPORTERS = (
    "Kim Anh",
    "Bùi Giang",
    "Hùng Mạnh",
    "Quốc Dũng",
    "Linh Sơn",
    "Thanh Hải",
    "Văn Đức",
    "Hữu Chí",
    "Công Trí",
    "Nguyễn Thanh",
    "Giang Phương",
    "Vũ Hà",
    "Minh Hà",
    "Quang Huy",
    "Hải Yến",
    "Lê Sen",
    "Hồng Phát",
    "Đậu Tất Thành",
    "Lưu Niệm",
    "Trần Quyên",
    "Phương Anh",
)

PHOTOGRAPHERS = ("Trần Xuân Tình", "Thùy Dung", "Văn Điệp", "Anh Tuấn", "Minh Đức")

CAPTION_SCENES = (
    "Lực lượng chức năng kiểm tra hiện trường",
    "Quang cảnh buổi làm việc",
    "Người dân tham gia hoạt động",
    "Đại biểu dự hội nghị",
    "Tang vật bị thu giữ",
    "Toàn cảnh công trình",
    "Cán bộ hướng dẫn người dân làm thủ tục",
)

TAG_WORDS = (
    "an ninh",
    "pháp luật",
    "kinh tế",
    "giáo dục",
    "y tế",
    "du lịch",
    "chuyển đổi số",
    "dân vận",
    "giao thông",
    "môi trường",
    "thể thao",
    "văn hóa",
    "đầu tư",
    "xuất khẩu",
)

_P_RE = re.compile(r"<p>(.*?)</p>", re.S)
_TAG_RE = re.compile(r"<[^>]+>")


def real_paragraphs(pages: Iterable[SourcePage]) -> list[str]:
    """Body paragraphs of the real 2025 pages, decoded, in file order."""
    out: list[str] = []
    for source in pages:
        page = source.text
        i, j = page.find('<div id="divfirst">'), page.find('<div class="author">')
        if i < 0 or j < 0:
            continue
        for raw in _P_RE.findall(page[i:j]):
            if "<iframe" in raw or "<img" in raw:
                continue
            text = collapse(html.unescape(_TAG_RE.sub(" ", raw)))
            if len(text) >= 60:
                out.append(text)
    return out


def seed_paragraphs(seed_text: str) -> list[str]:
    """Paragraphs of the seed article text that are neither captions nor the byline."""
    lines = [collapse(x) for x in seed_text.splitlines() if x.strip() and not x.startswith("#")]
    return [x for x in lines[2:-1] if "Ảnh:" not in x]


def vary(text: str, province: str) -> str:
    """Move a paragraph to another province (keeps recombined text plausible)."""
    for p in PROVINCES:
        if p in text and p != province:
            text = text.replace(p, province)
    return text
