"use strict";
/* tslint:disable */
Object.defineProperty(exports, "__esModule", { value: true });
exports.HttpLogRecord = exports._capnpFileId = void 0;
const capnp_ts_1 = require("capnp-ts");
exports._capnpFileId = "f42cd342ff520eca";
class HttpLogRecord extends capnp_ts_1.Struct {
    getTimestampEpochMilli() { return capnp_ts_1.Struct.getUint64(0, this); }
    setTimestampEpochMilli(value) { capnp_ts_1.Struct.setUint64(0, value, this); }
    getResourceId() { return capnp_ts_1.Struct.getUint64(8, this); }
    setResourceId(value) { capnp_ts_1.Struct.setUint64(8, value, this); }
    getBytesSent() { return capnp_ts_1.Struct.getUint64(16, this); }
    setBytesSent(value) { capnp_ts_1.Struct.setUint64(16, value, this); }
    getRequestTimeMilli() { return capnp_ts_1.Struct.getUint64(24, this); }
    setRequestTimeMilli(value) { capnp_ts_1.Struct.setUint64(24, value, this); }
    getResponseStatus() { return capnp_ts_1.Struct.getUint16(32, this); }
    setResponseStatus(value) { capnp_ts_1.Struct.setUint16(32, value, this); }
    getCacheStatus() { return capnp_ts_1.Struct.getText(0, this); }
    setCacheStatus(value) { capnp_ts_1.Struct.setText(0, value, this); }
    getMethod() { return capnp_ts_1.Struct.getText(1, this); }
    setMethod(value) { capnp_ts_1.Struct.setText(1, value, this); }
    getRemoteAddr() { return capnp_ts_1.Struct.getText(2, this); }
    setRemoteAddr(value) { capnp_ts_1.Struct.setText(2, value, this); }
    getUrl() { return capnp_ts_1.Struct.getText(3, this); }
    setUrl(value) { capnp_ts_1.Struct.setText(3, value, this); }
    toString() { return "HttpLogRecord_" + super.toString(); }
}
exports.HttpLogRecord = HttpLogRecord;
HttpLogRecord._capnp = { displayName: "HttpLogRecord", id: "c5c66f22213ada4b", size: new capnp_ts_1.ObjectSize(40, 4) };
