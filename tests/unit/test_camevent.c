/* test_camevent.c: camera alarm-server pushes (Hikvision XML, multipart, generic JSON), good and hostile. */
#include <stdlib.h>

#include "cn_camevent.h"
#include "cn_err.h"
#include "cn_json.h"
#include "cn_test.h"

static int parse(const char *ct, const char *body, struct cn_camevent *ev, char *err, size_t cap)
{
	return cn_camevent_parse(ct, (const uint8_t *)body, strlen(body), ev, err, cap);
}

/* A tiny JPEG-looking picture: SOI, APP0 "JFIF", EOI. Holds NUL bytes and CR LF "--" on
 * purpose, so the multipart splitter must be binary-safe. */
static const uint8_t jpeg_a[] = { 0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J',  'F',  'I', 'F',
				  0x00, 0x01, '\r', '\n', '-',  '-',  'M',  'I',  0xff, 0xd9 };
static const uint8_t jpeg_b[] = { 0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0xff, 0xd9 };

#define HIK_HEAD(ns)                                                                         \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"                                     \
	"<EventNotificationAlert version=\"2.0\" xmlns=\"" ns "\">\r\n"                      \
	"<ipAddress>192.168.1.64</ipAddress>\r\n"                                             \
	"<ipv6Address>::</ipv6Address>\r\n"                                                   \
	"<portNo>80</portNo>\r\n"                                                             \
	"<protocol>HTTP</protocol>\r\n"                                                       \
	"<macAddress>44:19:B6:6D:24:85</macAddress>\r\n"

#define HIK_NS "http://www.hikvision.com/ver20/XMLSchema"
#define ISAPI_NS "http://www.isapi.org/ver20/XMLSchema"

/* Builds a multipart body: each part is a header block (lines ending CRLF, or "" for
 * none) and bytes. */
struct part {
	const char *headers;
	const void *data;
	size_t len;
};

static void multipart(struct cn_buf *b, const char *boundary, const struct part *parts, size_t n,
		      bool close)
{
	cn_buf_init(b, 2 * CN_CAMEVENT_MAX_BODY);
	for (size_t i = 0; i < n; i++) {
		cn_buf_printf(b, "%s--%s\r\n%s\r\n", i ? "\r\n" : "", boundary, parts[i].headers);
		cn_buf_append(b, parts[i].data, parts[i].len);
	}
	if (close)
		cn_buf_printf(b, "\r\n--%s--\r\n", boundary);
}

static int parse_buf(const char *ct, const struct cn_buf *b, struct cn_camevent *ev, char *err,
		     size_t cap)
{
	return cn_camevent_parse(ct, (const uint8_t *)b->data, b->len, ev, err, cap);
}

/* An integer member: cn_json_add_i64 writes exact digits as a raw item. */
static long long jint(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (cJSON_IsNumber(v))
		return (long long)v->valuedouble;
	if (cJSON_IsRaw(v) && v->valuestring)
		return strtoll(v->valuestring, NULL, 10);
	return -999999;
}

/* Expects a failure with code rc whose message holds why. */
#define CHECK_FAIL(call, rc_want, why)                                                       \
	do {                                                                                 \
		char err_[256] = "";                                                         \
		struct cn_camevent ev_;                                                      \
		int rc_ = (call);                                                            \
		(void)ev_;                                                                   \
		if (rc_ != (rc_want) || !strstr(err_, (why)))                                \
			cn_test_fail(__FILE__, __LINE__, "rc %d err '%s', wanted %d '%s'", rc_, \
				     err_, (int)(rc_want), (why));                           \
	} while (0)

TEST(camevent_hik_motion)
{
	static const char xml[] =
		HIK_HEAD(HIK_NS)
		"<channelID>1</channelID>\r\n"
		"<dateTime>2026-11-21T10:15:00+01:00</dateTime>\r\n"
		"<activePostCount>3</activePostCount>\r\n"
		"<eventType>VMD</eventType>\r\n"
		"<eventState>active</eventState>\r\n"
		"<eventDescription>Motion alarm</eventDescription>\r\n"
		"<channelName>Gate</channelName>\r\n"
		"</EventNotificationAlert>\r\n";
	struct cn_camevent ev;
	char err[256];

	CHECK_INT(parse("application/xml; charset=\"UTF-8\"", xml, &ev, err, sizeof(err)), 0);
	CHECK_INT(ev.type, CN_CAMEV_MOTION);
	CHECK_STR(ev.type_name, "motion");
	CHECK_STR(ev.vendor_type, "VMD");
	CHECK_STR(ev.source_format, "hikvision-xml");
	CHECK_STR(ev.camera, "1");
	CHECK_INT(ev.channel, 1);
	CHECK_STR(ev.device_ip, "192.168.1.64");
	CHECK_STR(ev.device_mac, "44:19:b6:6d:24:85");
	CHECK_INT(ev.device_port, 80);
	CHECK_STR(ev.protocol, "HTTP");
	CHECK_INT(ev.post_count, 3);
	CHECK_INT(ev.utc_ms, 1795252500000LL);
	CHECK(ev.offset_known);
	CHECK_INT(ev.utc_offset_min, 60);
	CHECK(ev.active);
	CHECK_STR(ev.description, "Motion alarm");
	CHECK_INT(ev.confidence, -1);
	CHECK_INT(ev.snapshot_kind, CN_CAMEV_SNAP_NONE);
	CHECK(ev.snapshot.len == 0 && ev.region[0] == '\0' && ev.plate[0] == '\0');
}

TEST(camevent_hik_line_crossing)
{
	/* isapi namespace under a prefix, indentation, a region list of two entries (the
	 * first wins), coordinates we skip. */
	static const char xml[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<isapi:EventNotificationAlert version=\"2.0\" xmlns:isapi=\"" ISAPI_NS "\">\n"
		"  <isapi:ipAddress>10.0.0.7</isapi:ipAddress>\n"
		"  <isapi:portNo>443</isapi:portNo>\n"
		"  <isapi:protocol>HTTPS</isapi:protocol>\n"
		"  <isapi:macAddress>c0-56-e3-aa-bb-0c</isapi:macAddress>\n"
		"  <isapi:channelID>2</isapi:channelID>\n"
		"  <isapi:dateTime>2026-11-21T08:30:12.250-05:00</isapi:dateTime>\n"
		"  <isapi:activePostCount>1</isapi:activePostCount>\n"
		"  <isapi:eventType>linedetection</isapi:eventType>\n"
		"  <isapi:eventState>active</isapi:eventState>\n"
		"  <isapi:eventDescription>linedetection alarm</isapi:eventDescription>\n"
		"  <isapi:DetectionRegionList>\n"
		"    <isapi:DetectionRegionEntry>\n"
		"      <isapi:regionID>1</isapi:regionID>\n"
		"      <isapi:sensitivityLevel>50</isapi:sensitivityLevel>\n"
		"      <isapi:RegionCoordinatesList>\n"
		"        <isapi:RegionCoordinates><isapi:positionX>100</isapi:positionX>"
		"<isapi:positionY>200</isapi:positionY></isapi:RegionCoordinates>\n"
		"      </isapi:RegionCoordinatesList>\n"
		"      <isapi:detectionTarget>Human</isapi:detectionTarget>\n"
		"    </isapi:DetectionRegionEntry>\n"
		"    <isapi:DetectionRegionEntry>\n"
		"      <isapi:regionID>2</isapi:regionID>\n"
		"      <isapi:detectionTarget>vehicle</isapi:detectionTarget>\n"
		"    </isapi:DetectionRegionEntry>\n"
		"  </isapi:DetectionRegionList>\n"
		"</isapi:EventNotificationAlert>\n";
	struct cn_camevent ev;
	char err[256];

	CHECK_INT(parse("text/xml", xml, &ev, err, sizeof(err)), 0);
	CHECK_STR(ev.type_name, "line_crossing");
	CHECK_INT(ev.type, CN_CAMEV_LINE_CROSSING);
	CHECK_STR(ev.region, "1");
	CHECK_STR(ev.target, "human");
	CHECK_STR(ev.device_mac, "c0:56:e3:aa:bb:0c");
	CHECK_INT(ev.device_port, 443);
	CHECK_INT(ev.utc_ms, 1795267812250LL);
	CHECK_INT(ev.utc_offset_min, -300);
	CHECK_STR(ev.camera, "2");
}

TEST(camevent_hik_intrusion_variants)
{
	static const struct {
		const char *vendor, *variant;
	} cases[] = {
		{ "fielddetection", "" },
		{ "regionEntrance", "entrance" },
		{ "regionExiting", "exit" },
	};
	struct cn_camevent ev;
	char xml[1024], err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(xml, sizeof(xml),
			 HIK_HEAD(HIK_NS)
			 "<dynChannelID>5</dynChannelID>"
			 "<dateTime>2026-11-21T10:15:00Z</dateTime>"
			 "<eventType>%s</eventType><eventState>active</eventState>"
			 "<eventDescription><![CDATA[Intrusion <zone> & fence]]></eventDescription>"
			 "<targetType>vehicle</targetType>"
			 "<DetectionRegionList><DetectionRegionEntry><regionID>4</regionID>"
			 "</DetectionRegionEntry></DetectionRegionList>"
			 "</EventNotificationAlert>",
			 cases[i].vendor);
		CHECK_INT(parse("application/xml", xml, &ev, err, sizeof(err)), 0);
		CHECK_INT(ev.type, CN_CAMEV_INTRUSION);
		CHECK_STR(ev.type_name, "intrusion");
		CHECK_STR(ev.variant, cases[i].variant);
		CHECK_STR(ev.vendor_type, cases[i].vendor);
		CHECK_STR(ev.description, "Intrusion <zone> & fence");
		CHECK_STR(ev.target, "vehicle");
		CHECK_STR(ev.region, "4");
		CHECK_INT(ev.channel, 5);
		CHECK_INT(ev.utc_ms, 1795256100000LL);
		CHECK(ev.offset_known && ev.utc_offset_min == 0);
	}
}

TEST(camevent_hik_video_loss_tamper)
{
	static const struct {
		const char *vendor, *state;
		enum cn_camevent_type type;
		bool active;
	} cases[] = {
		/* videoloss/inactive is what many cameras push as a keep-alive */
		{ "videoloss", "inactive", CN_CAMEV_VIDEO_LOSS, false },
		{ "videoloss", "active", CN_CAMEV_VIDEO_LOSS, true },
		{ "shelteralarm", "active", CN_CAMEV_TAMPER, true },
		{ "tamperdetection", "Inactive", CN_CAMEV_TAMPER, false },
		{ "vmd", "active", CN_CAMEV_MOTION, true },
	};
	struct cn_camevent ev;
	char xml[1024], err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(xml, sizeof(xml),
			 "<EventNotificationAlert version=\"1.0\" "
			 "xmlns=\"http://www.hikvision.com/ver10/XMLSchema\">"
			 "<ipAddress>172.16.0.20</ipAddress><channelID>1</channelID>"
			 "<dateTime>2026-11-21T10:15:00+0100</dateTime>"
			 "<activePostCount>0</activePostCount>"
			 "<eventType>%s</eventType><eventState>%s</eventState>"
			 "<eventDescription>%s alarm</eventDescription>"
			 "</EventNotificationAlert>",
			 cases[i].vendor, cases[i].state, cases[i].vendor);
		CHECK_INT(parse("application/xml", xml, &ev, err, sizeof(err)), 0);
		CHECK_INT(ev.type, cases[i].type);
		CHECK_STR(ev.type_name, cn_camevent_type_str(cases[i].type));
		CHECK(ev.active == cases[i].active);
		/* "+0100" (ISO 8601 basic offset) is read like "+01:00" */
		CHECK_INT(ev.utc_ms, 1795252500000LL);
		CHECK_INT(ev.utc_offset_min, 60);
	}
}

TEST(camevent_hik_local_time)
{
	static const char xml[] = "<EventNotificationAlert><channelID>3</channelID>"
				  "<dateTime>2026-11-21T10:15:00</dateTime>"
				  "<eventType>VMD</eventType></EventNotificationAlert>";
	struct cn_camevent ev;
	char err[256];
	cJSON *j;

	CHECK_INT(parse("application/xml", xml, &ev, err, sizeof(err)), 0);
	/* No offset: the camera's wall clock read as if UTC, flagged unknown. */
	CHECK(!ev.offset_known);
	CHECK_INT(ev.utc_ms, 1795256100000LL);
	CHECK_INT(ev.utc_offset_min, 0);
	CHECK(ev.active); /* eventState absent: active */
	CHECK_INT(cn_camevent_to_json(&ev, &j), 0);
	CHECK(cJSON_GetObjectItem(j, "local_time") == NULL);
	CHECK(cJSON_GetObjectItem(j, "utc_offset_min") == NULL);
	cJSON_Delete(j);
	/* The edge applies the camera's configured zone, once. */
	CHECK_INT(cn_camevent_set_offset(&ev, 60), 0);
	CHECK(ev.offset_known);
	CHECK_INT(ev.utc_ms, 1795252500000LL);
	CHECK_INT(ev.utc_offset_min, 60);
	CHECK_INT(cn_camevent_set_offset(&ev, 60), -EEXIST);
	CHECK_INT(cn_camevent_to_json(&ev, &j), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "time")), "2026-11-21T09:15:00.000Z");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "local_time")),
		  "2026-11-21T10:15:00.000+01:00");
	cJSON_Delete(j);
	CHECK_INT(parse("application/xml", xml, &ev, err, sizeof(err)), 0);
	CHECK_INT(cn_camevent_set_offset(&ev, 1440), -EINVAL);
}

TEST(camevent_multipart_anpr)
{
	static const char xml[] =
		HIK_HEAD(ISAPI_NS)
		"<channelID>1</channelID>\r\n"
		"<dateTime>2026-11-21T23:59:59+08:00</dateTime>\r\n"
		"<activePostCount>1</activePostCount>\r\n"
		"<eventType>ANPR</eventType>\r\n"
		"<eventState>active</eventState>\r\n"
		"<eventDescription>ANPR</eventDescription>\r\n"
		"<channelName>Barrier In</channelName>\r\n"
		"<ANPR>\r\n"
		"<country>EU</country>\r\n"
		"<licensePlate>AB123CD</licensePlate>\r\n"
		"<line>1</line>\r\n"
		"<direction>forward</direction>\r\n"
		"<confidenceLevel>87</confidenceLevel>\r\n"
		"<plateType>unknown</plateType>\r\n"
		"<plateColor>white</plateColor>\r\n"
		"<vehicleType>Vehicle</vehicleType>\r\n"
		"<pictureInfoList><pictureInfo><fileName>licensePlatePicture.jpg</fileName>"
		"<type>licensePlatePicture</type></pictureInfo></pictureInfoList>\r\n"
		"</ANPR>\r\n"
		"<UUID>6f1c2a3e-0000-4000-8000-000000000001</UUID>\r\n"
		"<picNum>2</picNum>\r\n"
		"</EventNotificationAlert>\r\n";
	char h_xml[256], h_a[256], h_b[256], err[256];
	struct part parts[3];
	struct cn_camevent ev;
	struct cn_buf b;
	struct cn_str jpeg;
	cJSON *j, *src;

	snprintf(h_xml, sizeof(h_xml),
		 "Content-Disposition: form-data; name=\"anpr.xml\"; filename=\"anpr.xml\"\r\n"
		 "Content-Type: application/xml\r\nContent-Length: %zu\r\n",
		 sizeof(xml) - 1);
	snprintf(h_a, sizeof(h_a),
		 "Content-Disposition: form-data; name=\"licensePlatePicture.jpg\"; "
		 "filename=\"licensePlatePicture.jpg\"\r\ncontent-type: image/jpeg\r\n"
		 "Content-Length: %zu\r\n",
		 sizeof(jpeg_a));
	snprintf(h_b, sizeof(h_b),
		 "Content-Disposition: form-data; name=\"detectionPicture.jpg\"\r\n"
		 "Content-Type: image/jpeg\r\nContent-Transfer-Encoding: binary\r\n");
	parts[0] = (struct part){ h_xml, xml, sizeof(xml) - 1 };
	parts[1] = (struct part){ h_a, jpeg_a, sizeof(jpeg_a) };
	parts[2] = (struct part){ h_b, jpeg_b, sizeof(jpeg_b) };
	multipart(&b, "MIME_boundary", parts, 3, true);
	CHECK_INT(parse_buf("multipart/form-data; boundary=\"MIME_boundary\"", &b, &ev, err,
			    sizeof(err)),
		  0);
	CHECK_INT(ev.type, CN_CAMEV_ANPR);
	CHECK_STR(ev.type_name, "anpr");
	CHECK_STR(ev.plate, "AB123CD");
	CHECK_STR(ev.country, "EU");
	CHECK_INT(ev.confidence, 87);
	CHECK_STR(ev.vehicle_type, "vehicle");
	CHECK_STR(ev.direction, "forward");
	CHECK_INT(ev.utc_ms, 1795276799000LL);
	CHECK_INT(ev.utc_offset_min, 480);
	CHECK_INT(ev.image_parts, 2);
	CHECK_INT(ev.snapshot_kind, CN_CAMEV_SNAP_JPEG);
	CHECK_STR(ev.snapshot_name, "licensePlatePicture.jpg");
	/* The snapshot is the first picture, in place in the body. */
	CHECK(ev.snapshot.len == sizeof(jpeg_a) && ev.snapshot_bytes == sizeof(jpeg_a));
	CHECK(ev.snapshot.p > b.data && ev.snapshot.p + ev.snapshot.len < b.data + b.len);
	CHECK(memcmp(ev.snapshot.p, jpeg_a, sizeof(jpeg_a)) == 0);
	CHECK_INT(cn_camevent_snapshot_jpeg(&ev, NULL, 0, &jpeg), 0);
	CHECK(jpeg.p == ev.snapshot.p && jpeg.len == sizeof(jpeg_a));

	CHECK_INT(cn_camevent_to_json(&ev, &j), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "camera")), "1");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "type")), "anpr");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "time")), "2026-11-21T15:59:59.000Z");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "local_time")),
		  "2026-11-21T23:59:59.000+08:00");
	CHECK_INT(jint(j, "utc_offset_min"), 480);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")), "active");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "plate")), "AB123CD");
	CHECK_INT(jint(j, "confidence"), 87);
	src = cJSON_GetObjectItem(j, "source");
	CHECK(cJSON_IsObject(src));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "format")), "hikvision-xml");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "event_type")), "ANPR");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "device_ip")), "192.168.1.64");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "device_mac")), "44:19:b6:6d:24:85");
	CHECK_INT(jint(src, "channel"), 1);
	CHECK(cJSON_GetObjectItem(j, "snapshot") == NULL && cJSON_GetObjectItem(j, "id") == NULL);
	cJSON_Delete(j);
	cn_buf_free(&b);

	/* multipart/mixed, unquoted boundary with a preamble, an XML part known only by its
	 * name, an ignored text part, no pictures. */
	parts[0] = (struct part){ "Content-Disposition: form-data; name=\"event.XML\"\r\n", xml,
				  sizeof(xml) - 1 };
	parts[1] = (struct part){ "Content-Type: text/plain\r\n", "hello", 5 };
	cn_buf_init(&b, 1 << 20);
	cn_buf_append_str(&b, "preamble to ignore\r\n");
	{
		struct cn_buf rest;
		multipart(&rest, "----=_b0und4ry", parts, 2, true);
		cn_buf_append(&b, rest.data, rest.len);
		cn_buf_free(&rest);
	}
	cn_buf_append_str(&b, "epilogue to ignore");
	CHECK_INT(parse_buf("Multipart/Mixed;boundary=\"----=_b0und4ry\"", &b, &ev, err, sizeof(err)),
		  0);
	CHECK_STR(ev.plate, "AB123CD");
	CHECK_INT(ev.image_parts, 0);
	CHECK_INT(ev.snapshot_kind, CN_CAMEV_SNAP_NONE);
	CHECK_INT(cn_camevent_snapshot_jpeg(&ev, NULL, 0, &jpeg), -ENOENT);
	cn_buf_free(&b);
}

TEST(camevent_json_push)
{
	static const char full[] =
		"{\"camera\":\"cam-1\",\"type\":\"anpr\",\"time\":\"2026-11-21T10:15:00+01:00\","
		"\"state\":\"active\",\"region\":\"Gate A\",\"target\":\"vehicle\","
		"\"plate\":\"AB123CD\",\"country\":\"FR\",\"confidence\":87,"
		"\"vehicle_type\":\"car\",\"direction\":\"forward\","
		"\"description\":\"Barrier in\\nlane 2\",\"snapshot\":\"/9j/4AAQSkZJRgAB/9k=\"}";
	static const uint8_t pic[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0, 1,
				       0xff, 0xd9 };
	struct cn_camevent ev;
	struct cn_str jpeg;
	uint8_t buf[32];
	char err[256];
	cJSON *j, *src;

	CHECK_INT(parse("application/json; charset=utf-8", full, &ev, err, sizeof(err)), 0);
	CHECK_STR(ev.source_format, "json");
	CHECK_STR(ev.camera, "cam-1");
	CHECK_INT(ev.channel, -1);
	CHECK_INT(ev.type, CN_CAMEV_ANPR);
	CHECK_INT(ev.utc_ms, 1795252500000LL);
	CHECK(ev.offset_known && ev.utc_offset_min == 60);
	CHECK_STR(ev.region, "Gate A");
	CHECK_STR(ev.plate, "AB123CD");
	CHECK_INT(ev.confidence, 87);
	CHECK_STR(ev.description, "Barrier in\nlane 2");
	/* The snapshot stays base64, as a span of the body; decoding is on demand. */
	CHECK_INT(ev.snapshot_kind, CN_CAMEV_SNAP_BASE64);
	CHECK(ev.snapshot.len == 20 && memcmp(ev.snapshot.p, "/9j/4AAQSkZJRgAB/9k=", 20) == 0);
	CHECK(ev.snapshot.p > full && ev.snapshot.p < full + sizeof(full));
	CHECK_INT(ev.snapshot_bytes, sizeof(pic));
	CHECK_INT(cn_camevent_snapshot_jpeg(&ev, buf, 4, &jpeg), -ENOSPC);
	CHECK_INT(cn_camevent_snapshot_jpeg(&ev, buf, sizeof(buf), &jpeg), 0);
	CHECK(jpeg.len == sizeof(pic) && memcmp(jpeg.p, pic, sizeof(pic)) == 0);
	CHECK_INT(cn_camevent_to_json(&ev, &j), 0);
	src = cJSON_GetObjectItem(j, "source");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "format")), "json");
	CHECK(cJSON_GetObjectItem(src, "channel") == NULL);
	CHECK(cJSON_GetObjectItem(src, "device_ip") == NULL);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "region")), "Gate A");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "vehicle_type")), "car");
	cJSON_Delete(j);

	/* Minimal, and a custom dotted type. */
	CHECK_INT(parse("application/json",
			" {\"camera\":\"door_3\",\"type\":\"acme.smoke_detected\","
			"\"time\":\"2026-11-21T09:15:00Z\",\"state\":\"inactive\"}\n",
			&ev, err, sizeof(err)),
		  0);
	CHECK_INT(ev.type, CN_CAMEV_CUSTOM);
	CHECK_STR(ev.type_name, "acme.smoke_detected");
	CHECK(!ev.active);
	CHECK_INT(ev.utc_ms, 1795252500000LL);
	CHECK_INT(cn_camevent_to_json(&ev, &j), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "type")), "acme.smoke_detected");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "local_time")),
		  "2026-11-21T09:15:00.000+00:00");
	CHECK(cJSON_GetObjectItem(j, "confidence") == NULL);
	cJSON_Delete(j);
}

TEST(camevent_to_json_shape)
{
	static const char *const allowed[] = {
		"camera", "type", "time", "local_time", "utc_offset_min", "state", "variant",
		"region", "target", "plate", "country", "confidence", "vehicle_type",
		"direction", "description", "source",
	};
	static const char xml[] =
		HIK_HEAD(HIK_NS)
		"<channelID>7</channelID><dateTime>2026-11-21T10:15:00+01:00</dateTime>"
		"<activePostCount>2</activePostCount><eventType>regionExiting</eventType>"
		"<eventState>inactive</eventState><eventDescription>Region exiting</eventDescription>"
		"<DetectionRegionList><DetectionRegionEntry><regionID>3</regionID>"
		"<detectionTarget>human</detectionTarget></DetectionRegionEntry></DetectionRegionList>"
		"</EventNotificationAlert>";
	struct cn_camevent ev;
	struct cn_buf out;
	char err[256];
	cJSON *j, *src;

	CHECK_INT(parse("application/xml", xml, &ev, err, sizeof(err)), 0);
	CHECK_INT(cn_camevent_to_json(&ev, &j), 0);
	/* Only members the schema knows (the edge adds id, seq, snapshot). */
	for (const cJSON *c = j->child; c; c = c->next) {
		size_t i;
		for (i = 0; i < sizeof(allowed) / sizeof(*allowed); i++)
			if (strcmp(c->string, allowed[i]) == 0)
				break;
		if (i == sizeof(allowed) / sizeof(*allowed))
			cn_test_fail(__FILE__, __LINE__, "unexpected member '%s'", c->string);
	}
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "type")), "intrusion");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "variant")), "exit");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "state")), "inactive");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "region")), "3");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "target")), "human");
	CHECK(cJSON_GetObjectItem(j, "plate") == NULL && cJSON_GetObjectItem(j, "confidence") == NULL);
	src = cJSON_GetObjectItem(j, "source");
	CHECK_INT(jint(src, "channel"), 7);
	CHECK_INT(jint(src, "post_count"), 2);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(src, "event_type")), "regionExiting");
	/* Exact serialisation: member order is part of what the edge stores. */
	cn_buf_init(&out, 4096);
	CHECK_INT(cn_json_print(j, &out), 0);
	CHECK_STR(out.data,
		  "{\"camera\":\"7\",\"type\":\"intrusion\",\"time\":\"2026-11-21T09:15:00.000Z\","
		  "\"local_time\":\"2026-11-21T10:15:00.000+01:00\",\"utc_offset_min\":60,"
		  "\"state\":\"inactive\",\"variant\":\"exit\",\"region\":\"3\",\"target\":\"human\","
		  "\"description\":\"Region exiting\",\"source\":{\"format\":\"hikvision-xml\","
		  "\"event_type\":\"regionExiting\",\"device_ip\":\"192.168.1.64\","
		  "\"device_mac\":\"44:19:b6:6d:24:85\",\"channel\":7,\"post_count\":2}}");
	cn_buf_free(&out);
	cJSON_Delete(j);
	/* A zeroed event is not something parse gives: refused. */
	memset(&ev, 0, sizeof(ev));
	CHECK_INT(cn_camevent_to_json(&ev, &j), -EINVAL);
	CHECK(j == NULL);
}

#define X(body) "<EventNotificationAlert xmlns=\"" HIK_NS "\">" body "</EventNotificationAlert>"
#define OKF "<channelID>1</channelID><dateTime>2026-11-21T10:15:00Z</dateTime>"

TEST(camevent_xml_rejects)
{
	static const struct {
		const char *xml, *why;
		int rc;
	} bad[] = {
		{ "<EventNotificationAlert><eventType>VMD</eventType>", "not well-formed: no element found", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType></channelID>"), "not well-formed: mismatched tag", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD&foo;</eventType>"), "undefined entity", CN_E_MALFORMED },
		{ "", "body is empty", CN_E_MALFORMED },
		{ "<Alert>" OKF "<eventType>VMD</eventType></Alert>", "root element is 'Alert'", CN_E_MALFORMED },
		{ X(OKF "<eventType>IO</eventType>"), "unknown eventType 'IO'", CN_E_MALFORMED },
		{ X(OKF "<eventType>facedetection</eventType>"), "unknown eventType 'facedetection'", CN_E_MALFORMED },
		{ X(OKF), "has no eventType", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><eventType>ANPR</eventType>"), "eventType appears more than once", CN_E_MALFORMED },
		{ X(OKF "<eventType><b>VMD</b></eventType>"), "eventType must hold text", CN_E_MALFORMED },
		{ X("<channelID>1</channelID><eventType>VMD</eventType>"), "has no dateTime", CN_E_MALFORMED },
		{ X("<channelID>1</channelID><dateTime>2026-13-01T00:00:00Z</dateTime><eventType>VMD</eventType>"), "dateTime '2026-13-01T00:00:00Z' is not an ISO 8601", CN_E_MALFORMED },
		{ X("<channelID>1</channelID><dateTime>2026-02-30T00:00:00+01:00</dateTime><eventType>VMD</eventType>"), "dateTime '2026-02-30", CN_E_MALFORMED },
		{ X("<channelID>1</channelID><dateTime>21/11/2026 10:15</dateTime><eventType>VMD</eventType>"), "dateTime '21/11/2026 10:15'", CN_E_MALFORMED },
		{ X("<channelID>1</channelID><dateTime>2026-11-21T10:15:00+25:00</dateTime><eventType>VMD</eventType>"), "dateTime", CN_E_MALFORMED },
		{ X("<dateTime>2026-11-21T10:15:00Z</dateTime><eventType>VMD</eventType>"), "no channelID or dynChannelID", CN_E_MALFORMED },
		{ X("<channelID>one</channelID><dateTime>2026-11-21T10:15:00Z</dateTime><eventType>VMD</eventType>"), "channelID 'one' is not an integer 0..65535", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><eventState>on</eventState>"), "eventState must be 'active' or 'inactive', got 'on'", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><ipAddress>300.1.1.1</ipAddress>"), "ipAddress '300.1.1.1' is not an IPv4 address", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><ipv6Address>fe80::g</ipv6Address>"), "ipv6Address 'fe80::g'", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><macAddress>44:19:b6:6d:24</macAddress>"), "macAddress '44:19:b6:6d:24' is not six hex pairs", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><portNo>70000</portNo>"), "portNo '70000' is not an integer 0..65535", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><activePostCount>-1</activePostCount>"), "activePostCount '-1'", CN_E_MALFORMED },
		{ X(OKF "<eventType>ANPR</eventType><ANPR><licensePlate>AB1</licensePlate><confidenceLevel>101</confidenceLevel></ANPR>"), "confidenceLevel '101' is not an integer 0..100", CN_E_MALFORMED },
		{ X(OKF "<eventType>ANPR</eventType><ANPR><confidenceLevel>90</confidenceLevel></ANPR>"), "ANPR event has no ANPR/licensePlate", CN_E_MALFORMED },
		{ X(OKF "<eventType>ANPR</eventType><ANPR><licensePlate>AB-1234567890-1234567890-1234567</licensePlate></ANPR>"), "licensePlate is longer than 31 bytes", CN_E_MALFORMED },
		{ X(OKF "<eventType>ANPR</eventType><ANPR><licensePlate>AB&#9;1</licensePlate></ANPR>"), "licensePlate 'AB?1' must be UTF-8 text without control", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><detectionTarget>hu man</detectionTarget>"), "detectionTarget 'hu man' must be chars [a-z0-9_]", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><ANPR><country>Europe-EU</country></ANPR>"), "country is longer than 7 bytes", CN_E_MALFORMED },
		{ X(OKF "<eventType>VMD</eventType><protocol>HT TP</protocol>"), "protocol 'HT TP' must be chars [A-Za-z0-9]", CN_E_MALFORMED },
	};
	struct cn_camevent ev;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		int rc = parse("application/xml", bad[i].xml, &ev, err, sizeof(err));
		if (rc != bad[i].rc || !strstr(err, bad[i].why))
			cn_test_fail(__FILE__, __LINE__, "case %zu: rc %d err '%s', wanted '%s'", i, rc,
				     err, bad[i].why);
		CHECK(ev.type_name[0] == '\0' && ev.snapshot.p == NULL);
	}
}

TEST(camevent_xml_hostile)
{
	static const char laughs[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE lolz [\n"
		" <!ENTITY lol \"lol\">\n"
		" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		" <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
		" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
		"]>\n"
		"<EventNotificationAlert><channelID>1</channelID>"
		"<dateTime>2026-11-21T10:15:00Z</dateTime><eventType>VMD</eventType>"
		"<eventDescription>&lol3;</eventDescription></EventNotificationAlert>";
	static const char xxe[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE EventNotificationAlert SYSTEM \"http://attacker.invalid/evil.dtd\">\n"
		"<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>";
	static const char xxe2[] =
		"<!DOCTYPE x [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]>"
		"<EventNotificationAlert/>";
	struct cn_buf b;
	struct cn_camevent ev;
	char err[256];

	CHECK_FAIL(parse("application/xml", laughs, &ev_, err_, sizeof(err_)), CN_E_MALFORMED,
		   "XML has a DOCTYPE; DTDs and entity declarations are refused");
	CHECK_FAIL(parse("application/xml", xxe, &ev_, err_, sizeof(err_)), CN_E_MALFORMED,
		   "DOCTYPE");
	CHECK_FAIL(parse("text/xml", xxe2, &ev_, err_, sizeof(err_)), CN_E_MALFORMED, "DOCTYPE");

	/* Nesting: 16 levels are fine, 17 are not. */
	cn_buf_init(&b, 1 << 16);
	cn_buf_append_str(&b, "<EventNotificationAlert>" OKF "<eventType>VMD</eventType>");
	for (int i = 0; i < 15; i++)
		cn_buf_append_str(&b, "<n>");
	for (int i = 0; i < 15; i++)
		cn_buf_append_str(&b, "</n>");
	cn_buf_append_str(&b, "</EventNotificationAlert>");
	CHECK_INT(parse_buf("application/xml", &b, &ev, err, sizeof(err)), 0);
	cn_buf_reset(&b);
	cn_buf_append_str(&b, "<EventNotificationAlert>" OKF "<eventType>VMD</eventType>");
	for (int i = 0; i < 16; i++)
		cn_buf_append_str(&b, "<n>");
	for (int i = 0; i < 16; i++)
		cn_buf_append_str(&b, "</n>");
	cn_buf_append_str(&b, "</EventNotificationAlert>");
	CHECK_FAIL(parse_buf("application/xml", &b, &ev_, err_, sizeof(err_)), CN_E_TOO_BIG,
		   "XML nests deeper than 16 elements");
	cn_buf_free(&b);

	/* Element text: 256 bytes (white space around it not counted) pass, 257 do not. */
	cn_buf_init(&b, 1 << 16);
	cn_buf_append_str(&b, "<EventNotificationAlert>" OKF "<eventType>VMD</eventType>"
			      "<eventDescription>\n    ");
	for (int i = 0; i < 256; i++)
		cn_buf_append_str(&b, i % 2 ? "b" : " ");
	cn_buf_append_str(&b, "\n    </eventDescription></EventNotificationAlert>");
	CHECK_INT(parse_buf("application/xml", &b, &ev, err, sizeof(err)), 0);
	CHECK_INT(strlen(ev.description), 255);
	cn_buf_reset(&b);
	cn_buf_append_str(&b, "<EventNotificationAlert>" OKF "<eventType>VMD</eventType>"
			      "<eventDescription>");
	for (int i = 0; i < 257; i++)
		cn_buf_append_str(&b, "x");
	cn_buf_append_str(&b, "</eventDescription></EventNotificationAlert>");
	CHECK_FAIL(parse_buf("application/xml", &b, &ev_, err_, sizeof(err_)), CN_E_TOO_BIG,
		   "eventDescription holds more than 256 bytes of text");
	cn_buf_free(&b);

	/* Element count. */
	cn_buf_init(&b, 1 << 16);
	cn_buf_append_str(&b, "<EventNotificationAlert>" OKF "<eventType>VMD</eventType>");
	for (int i = 0; i < CN_CAMEVENT_MAX_ELEMENTS; i++)
		cn_buf_append_str(&b, "<e/>");
	cn_buf_append_str(&b, "</EventNotificationAlert>");
	CHECK_FAIL(parse_buf("application/xml", &b, &ev_, err_, sizeof(err_)), CN_E_TOO_BIG,
		   "XML has more than 2000 elements");
	cn_buf_free(&b);

	/* Document size. */
	cn_buf_init(&b, 1 << 20);
	cn_buf_append_str(&b, "<EventNotificationAlert>" OKF "<eventType>VMD</eventType><pad>");
	while (b.len <= CN_CAMEVENT_MAX_XML)
		cn_buf_append_str(&b, "0123456789abcdef0123456789abcdef");
	cn_buf_append_str(&b, "</pad></EventNotificationAlert>");
	CHECK_FAIL(parse_buf("application/xml", &b, &ev_, err_, sizeof(err_)), CN_E_TOO_BIG,
		   "XML document is");
	cn_buf_free(&b);

	/* A NUL byte inside the document. */
	{
		static const char nul[] = "<EventNotificationAlert>\0</EventNotificationAlert>";
		CHECK_FAIL(cn_camevent_parse("application/xml", (const uint8_t *)nul, sizeof(nul) - 1,
					     &ev_, err_, sizeof(err_)),
			   CN_E_MALFORMED, "not well-formed");
	}
}

TEST(camevent_multipart_rejects)
{
	static const char xml[] = X(OKF "<eventType>VMD</eventType>");
	struct part p[CN_CAMEVENT_MAX_PARTS + 1];
	struct cn_buf b;
	char hdr[128];

	CHECK_FAIL(parse("multipart/form-data", "x", &ev_, err_, sizeof(err_)), CN_E_MALFORMED,
		   "multipart Content-Type has no boundary parameter");
	CHECK_FAIL(parse("multipart/form-data; boundary=", "x", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "Content-Type has a malformed parameter");
	CHECK_FAIL(parse("multipart/form-data; boundary=\"abc", "x", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "malformed parameter");
	CHECK_FAIL(parse("multipart/form-data; boundary=a; boundary=b", "x", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "repeats the boundary parameter");
	CHECK_FAIL(parse("multipart/form-data; boundary=\"a\\\"b\"", "x", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "boundary 'a\"b' has a character RFC 2046 does not allow");
	CHECK_FAIL(parse("multipart/form-data; boundary=\"\"", "x", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "Content-Type boundary is empty");
	CHECK_FAIL(parse("multipart/form-data; boundary=\"ab \"", "x", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "boundary ends in a space");
	CHECK_FAIL(parse("multipart/form-data; boundary=12345678901234567890123456789012345678901234567890123456789012345678901",
			 "x", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "boundary is longer than 70 characters");
	CHECK_FAIL(parse("multipart/form-data; boundary=B", "--C\r\n\r\nx\r\n--C--", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart body has no boundary line '--B'");
	CHECK_FAIL(parse("multipart/form-data; boundary=B", "--B--\r\n", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart body has no parts");
	CHECK_FAIL(parse("multipart/form-data; boundary=B", "--Bxyz\r\n\r\nabc\r\n--B--", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "boundary line 1 is not followed by CRLF or '--'");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: application/xml\r\n\r\n<EventNotificationAlert/>",
			 &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart part 1 is not closed by a boundary (missing '--B--')");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\nContent-Type: application/xml\n\n<x/>\n--B--\n", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "boundary line 1 is not followed by CRLF");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: application/xml\r\n<x/>\r\n--B--", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart part 1 has no blank line after its headers");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B--", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart has no XML part");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: application/xml\r\n\tfolded\r\n\r\n<x/>\r\n--B--",
			 &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart part 1 folds a header line");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type application/xml\r\n\r\n<x/>\r\n--B--", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "header line 'Content-Type application/xml' is not 'Name: value'");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: application/xml\r\nContent-Type: text/xml\r\n\r\n<x/>\r\n--B--",
			 &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart part 1 repeats Content-Type");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: xml\r\n\r\n<x/>\r\n--B--", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart part 1 Content-Type 'xml' is not a type/subtype media type");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/\r\n--B--",
			 &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "Content-Transfer-Encoding 'base64' is not supported");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: image/jpeg\r\n\r\nGIF89a\r\n--B--", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart part 1 is image/jpeg but does not start with a JPEG marker");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: application/xml\r\nContent-Length: 5\r\n\r\n<x/>\r\n--B--",
			 &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart part 1 Content-Length is 5 but the part holds 4 bytes");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: application/xml\r\nContent-Length: -4\r\n\r\n<x/>\r\n--B--",
			 &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "Content-Length '-4' is not a byte count");
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: application/xml\r\n\r\n<x/>\r\n"
			 "--B\r\nContent-Disposition: form-data; name=\"b.xml\"\r\n\r\n<y/>\r\n--B--",
			 &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "multipart has two XML parts (1 and 2)");
	/* The XML part is parsed like a body: its errors come through. */
	CHECK_FAIL(parse("multipart/form-data; boundary=B",
			 "--B\r\nContent-Type: application/xml\r\n\r\n" X(OKF "<eventType>PIR</eventType>")
			 "\r\n--B--",
			 &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "unknown eventType 'PIR'");

	/* Too many parts. */
	for (int i = 0; i <= CN_CAMEVENT_MAX_PARTS; i++)
		p[i] = (struct part){ "Content-Type: text/plain\r\n", "x", 1 };
	p[0] = (struct part){ "Content-Type: application/xml\r\n", xml, sizeof(xml) - 1 };
	multipart(&b, "B", p, CN_CAMEVENT_MAX_PARTS, true);
	CHECK_FAIL(parse_buf("multipart/form-data; boundary=B", &b, &ev_, err_, sizeof(err_)), 0, "");
	cn_buf_free(&b);
	multipart(&b, "B", p, CN_CAMEVENT_MAX_PARTS + 1, true);
	CHECK_FAIL(parse_buf("multipart/form-data; boundary=B", &b, &ev_, err_, sizeof(err_)),
		   CN_E_TOO_BIG, "multipart has more than 16 parts");
	cn_buf_free(&b);

	/* Part headers over their bound. */
	{
		static const char tail[] = "\r\nContent-Type: application/xml\r\n";
		char *big = malloc(CN_CAMEVENT_MAX_PART_HEADERS + 64);
		memcpy(big, "X-Pad: ", 7);
		memset(big + 7, 'a', CN_CAMEVENT_MAX_PART_HEADERS);
		memcpy(big + 7 + CN_CAMEVENT_MAX_PART_HEADERS, tail, sizeof(tail));
		p[0] = (struct part){ big, xml, sizeof(xml) - 1 };
		multipart(&b, "B", p, 1, true);
		CHECK_FAIL(parse_buf("multipart/form-data; boundary=B", &b, &ev_, err_, sizeof(err_)),
			   CN_E_TOO_BIG, "multipart part 1 headers are longer than 4096 bytes");
		cn_buf_free(&b);
		free(big);
	}

	/* An XML part over 64 KiB. */
	{
		size_t n = CN_CAMEVENT_MAX_XML + 1;
		char *big = malloc(n);
		memset(big, ' ', n);
		memcpy(big, xml, sizeof(xml) - 1);
		snprintf(hdr, sizeof(hdr), "Content-Type: text/xml\r\n");
		p[0] = (struct part){ hdr, big, n };
		multipart(&b, "B", p, 1, true);
		CHECK_FAIL(parse_buf("multipart/form-data; boundary=B", &b, &ev_, err_, sizeof(err_)),
			   CN_E_TOO_BIG, "multipart part 1 (XML) is 65537 bytes, limit 65536");
		cn_buf_free(&b);
		free(big);
	}

	/* A body over 4 MiB, refused before anything is read. */
	{
		uint8_t *big = calloc(1, CN_CAMEVENT_MAX_BODY + 1);
		CHECK_FAIL(cn_camevent_parse("multipart/form-data; boundary=B", big,
					     CN_CAMEVENT_MAX_BODY + 1, &ev_, err_, sizeof(err_)),
			   CN_E_TOO_BIG, "body is 4194305 bytes, limit 4194304");
		free(big);
	}
}

TEST(camevent_content_type)
{
	static const char xml[] = X(OKF "<eventType>VMD</eventType>");
	char longct[CN_CAMEVENT_MAX_CONTENT_TYPE + 8];

	CHECK_FAIL(parse(NULL, xml, &ev_, err_, sizeof(err_)), CN_E_MALFORMED,
		   "request has no Content-Type");
	CHECK_FAIL(parse("", xml, &ev_, err_, sizeof(err_)), CN_E_MALFORMED,
		   "request has no Content-Type");
	CHECK_FAIL(parse("image/jpeg", xml, &ev_, err_, sizeof(err_)), CN_E_MALFORMED,
		   "unsupported Content-Type 'image/jpeg'");
	CHECK_FAIL(parse("application/x-www-form-urlencoded", xml, &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "unsupported Content-Type");
	CHECK_FAIL(parse("application/", xml, &ev_, err_, sizeof(err_)), CN_E_MALFORMED,
		   "Content-Type 'application/' is not a type/subtype media type");
	CHECK_FAIL(parse("application/xml junk", xml, &ev_, err_, sizeof(err_)), CN_E_MALFORMED,
		   "Content-Type has a malformed parameter");
	CHECK_FAIL(parse("application/json; charset=latin1", "{}", &ev_, err_, sizeof(err_)),
		   CN_E_MALFORMED, "JSON push charset must be utf-8, got 'latin1'");
	memset(longct, 'a', sizeof(longct) - 1);
	longct[sizeof(longct) - 1] = '\0';
	CHECK_FAIL(parse(longct, xml, &ev_, err_, sizeof(err_)), CN_E_TOO_BIG,
		   "Content-Type is longer than 1024 bytes");
	CHECK_FAIL(parse("  APPLICATION/XML ;charset=utf-8;", xml, &ev_, err_, sizeof(err_)), 0, "");
}

#define J(extra) "{\"camera\":\"cam-1\",\"type\":\"motion\",\"time\":\"2026-11-21T10:15:00Z\"" extra "}"

TEST(camevent_json_rejects)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
		{ "[]", "JSON push is not a JSON object" },
		{ "{\"camera\":", "not one JSON document" },
		{ J(",\"camera\":\"x\""), "repeated key" },
		{ J(",\"extra\":1"), "JSON push has unknown member 'extra'" },
		{ J(",\"Plate\":\"AB1\""), "unknown member 'Plate'" },
		{ J(",\"region\":{\"a\":{\"b\":1}}"), "nesting deeper than 2" },
		{ "{\"type\":\"motion\",\"time\":\"2026-11-21T10:15:00Z\"}", "JSON push has no 'camera'" },
		{ "{\"camera\":\"c\",\"time\":\"2026-11-21T10:15:00Z\"}", "JSON push has no 'type'" },
		{ "{\"camera\":\"c\",\"type\":\"motion\"}", "JSON push has no 'time'" },
		{ "{\"camera\":7,\"type\":\"motion\",\"time\":\"2026-11-21T10:15:00Z\"}", "JSON push 'camera' must be a string" },
		{ "{\"camera\":\"\",\"type\":\"motion\",\"time\":\"2026-11-21T10:15:00Z\"}", "JSON push 'camera' is empty" },
		{ "{\"camera\":\"cam 1\",\"type\":\"motion\",\"time\":\"2026-11-21T10:15:00Z\"}", "JSON push 'camera' 'cam 1' must be chars [A-Za-z0-9_.:-]" },
		{ "{\"camera\":\"c\",\"type\":\"smoke\",\"time\":\"2026-11-21T10:15:00Z\"}", "JSON push has unknown type 'smoke'" },
		{ "{\"camera\":\"c\",\"type\":\"Acme.Smoke\",\"time\":\"2026-11-21T10:15:00Z\"}", "unknown type 'Acme.Smoke'" },
		{ "{\"camera\":\"c\",\"type\":\"acme..smoke\",\"time\":\"2026-11-21T10:15:00Z\"}", "unknown type 'acme..smoke'" },
		{ "{\"camera\":\"c\",\"type\":[],\"time\":\"2026-11-21T10:15:00Z\"}", "JSON push 'type' must be a string" },
		{ "{\"camera\":\"c\",\"type\":\"motion\",\"time\":\"2026-11-21T10:15:00\"}", "JSON push 'time' '2026-11-21T10:15:00' is not an RFC 3339 date-time with an offset" },
		{ "{\"camera\":\"c\",\"type\":\"motion\",\"time\":\"2026-11-21T10:15:00+0100\"}", "is not an RFC 3339 date-time" },
		{ "{\"camera\":\"c\",\"type\":\"motion\",\"time\":1795252500}", "JSON push 'time' must be a string" },
		{ J(",\"state\":\"on\""), "JSON push 'state' must be 'active' or 'inactive', got 'on'" },
		{ J(",\"state\":true"), "JSON push 'state' must be a string" },
		{ J(",\"confidence\":101"), "JSON push 'confidence' must be an integer 0..100" },
		{ J(",\"confidence\":-1"), "'confidence' must be an integer 0..100" },
		{ J(",\"confidence\":87.5"), "'confidence' must be an integer 0..100" },
		{ J(",\"confidence\":\"87\""), "'confidence' must be an integer 0..100" },
		{ J(",\"plate\":\"AB\\u0001CD\""), "JSON push 'plate' 'AB?CD' must be UTF-8 text" },
		{ J(",\"plate\":\"AB\\u0000CD\""), "not one JSON document" },
		{ J(",\"region\":\"\xff\xfe\""), "JSON push 'region' '?" "?' must be UTF-8 text" },
		{ J(",\"target\":\"Human\""), "JSON push 'target' 'Human' must be chars [a-z0-9_]" },
		{ J(",\"description\":\"" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" "012345678901234567890123456789012345678901234567890123456" "\""), "JSON push 'description' is longer than 256 bytes" },
		{ "{\"camera\":\"c\",\"type\":\"anpr\",\"time\":\"2026-11-21T10:15:00Z\"}", "JSON push of type anpr has no 'plate'" },
		{ J(",\"snapshot\":\"R0lGODlhLW5vdC1hLWpwZWc=\""), "JSON push 'snapshot' is not a JPEG" },
		{ J(",\"snapshot\":\"/9j/4AAQSkZJRgAB/9k\""), "JSON push 'snapshot' is not padded base64" },
		{ J(",\"snapshot\":\"/9j/4A=QSkZJRgAB/9k=\""), "not padded base64" },
		{ J(",\"snapshot\":\"/9j/4AAQ SkZJRgAB/9k=\""), "not padded base64" },
		{ J(",\"snapshot\":\"/9j/4AAQ*kZJRgAB/9k=\""), "JSON push 'snapshot' is not valid base64" },
		{ J(",\"snapshot\":\"\\/9j\\/4AAQSkZJRgAB\\/9k=\""), "JSON push 'snapshot' must be plain base64 without JSON escapes" },
		{ J(",\"snaps\\u0068ot\":\"/9j/4AAQSkZJRgAB/9k=\""), "member name 'snapshot' must be written without escapes" },
		{ J(",\"snapshot\":\"\""), "JSON push 'snapshot' is empty" },
		{ J(",\"snapshot\":null"), "JSON push 'snapshot' must be a string" },
	};
	struct cn_camevent ev;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		int rc = parse("application/json", bad[i].json, &ev, err, sizeof(err));
		if (rc != CN_E_MALFORMED || !strstr(err, bad[i].why))
			cn_test_fail(__FILE__, __LINE__, "case %zu: rc %d err '%s', wanted '%s'", i, rc,
				     err, bad[i].why);
		CHECK(ev.camera[0] == '\0' && ev.snapshot.p == NULL);
	}
	/* A snapshot bigger than one decode chunk, then one that breaks in a later chunk. */
	{
		struct cn_buf b;
		struct cn_camevent e;
		cn_buf_init(&b, 1 << 20);
		cn_buf_append_str(&b, "{\"camera\":\"c\",\"type\":\"motion\","
				      "\"time\":\"2026-11-21T10:15:00Z\",\"snapshot\":\"/9j/");
		for (int i = 0; i < 3000; i++)
			cn_buf_append_str(&b, "AAAA");
		cn_buf_append_str(&b, "/9k=\"}");
		CHECK_INT(parse_buf("application/json", &b, &e, err, sizeof(err)), 0);
		CHECK_INT(e.snapshot_bytes, 3 + 3000 * 3 + 2);
		b.data[b.len - 3000] = '#';
		CHECK_FAIL(parse_buf("application/json", &b, &ev_, err_, sizeof(err_)), CN_E_MALFORMED,
			   "JSON push 'snapshot' is not valid base64");
		cn_buf_free(&b);
	}
}
