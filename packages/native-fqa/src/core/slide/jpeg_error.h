// libjpeg reports errors by calling error_exit, which by default ends the process. The tile decoder
// and the view's tile encoder both install this one instead: it keeps the message and jumps back to
// their setjmp, where the error becomes a string (and then an exception outside the setjmp frame).
#pragma once
#include <csetjmp>
#include <cstdio>

#include <jpeglib.h>

namespace fqa {

struct JpegError {
  jpeg_error_mgr manager;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

inline void jpegErrorExit(j_common_ptr cinfo) {
  JpegError* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

}  // namespace fqa
