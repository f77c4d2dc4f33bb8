# The layering of src/ (docs/architecture.md "Layers"), checked on every
# #include "<folder>/..." line: a file may include its own folder, the public
# headers (smc/) and the folders its layer lists below, never a higher one.
# Also: no file outside src/kafka/ calls or names librdkafka (rd_kafka_*),
# except those in SMC_RDKAFKA_PENDING (still to move, issue 20) and the
# in-process mock cluster of `smc dev` (cli/cmd_dev.c).
#   cmake -DSRC=<repo>/src -P tests/lint/check_layers.cmake
# Exits non-zero with one line per violation.
cmake_minimum_required(VERSION 3.25)
set(allowed_base "")
set(allowed_core "base")
set(allowed_store "base;core")
set(allowed_kafka "base;core")
set(allowed_client "base;core;kafka")
set(allowed_node "base;core;store;kafka")
set(allowed_gateway "base;core;store;kafka;client;node")
set(allowed_cli "base;core;store;kafka;client;node;gateway")
set(layers base core store kafka client node gateway cli)

# Files that still call librdkafka outside src/kafka/ (to move there).
set(SMC_RDKAFKA_PENDING
  node/committer.c)
set(SMC_RDKAFKA_MOCK cli/cmd_dev.c)

set(bad 0)
file(GLOB_RECURSE files RELATIVE ${SRC} ${SRC}/*.c ${SRC}/*.h)
foreach(f ${files})
  string(REGEX MATCH "^[^/]+" layer "${f}")
  if(NOT layer IN_LIST layers)
    message(SEND_ERROR "${f}: folder ${layer} is no layer (add it to tests/lint/check_layers.cmake and docs/architecture.md)")
    math(EXPR bad "${bad} + 1")
    continue()
  endif()
  file(STRINGS ${SRC}/${f} incs REGEX "^#[ \t]*include[ \t]+\"[a-z_]+/")
  foreach(line ${incs})
    string(REGEX REPLACE "^#[ \t]*include[ \t]+\"([a-z_]+)/.*" "\\1" to "${line}")
    if(to STREQUAL layer OR to STREQUAL "smc")
      continue()
    endif()
    if(NOT to IN_LIST allowed_${layer})
      message(SEND_ERROR "${f}: the ${layer} layer includes ${to}/ (${line}); allowed: ${allowed_${layer}}")
      math(EXPR bad "${bad} + 1")
    endif()
  endforeach()
  if(NOT layer STREQUAL "kafka" AND NOT f IN_LIST SMC_RDKAFKA_PENDING AND NOT f IN_LIST SMC_RDKAFKA_MOCK)
    file(STRINGS ${SRC}/${f} calls REGEX "rd_kafka_[a-z_]+ *\\(")
    if(calls)
      list(GET calls 0 first)
      string(STRIP "${first}" first)
      message(SEND_ERROR "${f}: calls librdkafka outside src/kafka/ (${first})")
      math(EXPR bad "${bad} + 1")
    endif()
  endif()
endforeach()
if(bad GREATER 0)
  message(FATAL_ERROR "${bad} layering violation(s)")
endif()
