# Embeds the browser files and the OpenAPI document into faceauthd at build
# time (as ttyd embeds its html.h): one generated C file with a table of
# {URL path, content type, bytes}. A change to any of the files regenerates it.
# Included from the top-level CMakeLists.txt after the faceauthd target.
if(NOT TARGET faceauthd)
  return()
endif()

# URL path | kind (js, html, css, yaml: see web_assets_gen.cmake) | file
set(FA_WEB_ASSETS
  "/sdk/faceauth.js|js|web/sdk/faceauth.js"
  "/demo/|html|web/demo/index.html"
  "/demo/demo.js|js|web/demo/demo.js"
  "/demo/demo.css|css|web/demo/demo.css"
  "/api/openapi.yaml|yaml|docs/openapi.yaml")

set(FA_WEB_GEN "${CMAKE_BINARY_DIR}/gen/web_assets.c")
set(FA_WEB_DEPS "")
foreach(a ${FA_WEB_ASSETS})
  string(REPLACE "|" ";" parts "${a}")
  list(GET parts 2 f)
  list(APPEND FA_WEB_DEPS "${CMAKE_SOURCE_DIR}/${f}")
endforeach()
string(REPLACE ";" "," FA_WEB_ASSETS_ARG "${FA_WEB_ASSETS}") # one argument
add_custom_command(
  OUTPUT "${FA_WEB_GEN}"
  COMMAND ${CMAKE_COMMAND} "-DSRC=${CMAKE_SOURCE_DIR}" "-DOUT=${FA_WEB_GEN}"
          "-DASSETS=${FA_WEB_ASSETS_ARG}" -P "${CMAKE_SOURCE_DIR}/cmake/web_assets_gen.cmake"
  DEPENDS ${FA_WEB_DEPS} "${CMAKE_SOURCE_DIR}/cmake/web_assets_gen.cmake"
  COMMENT "Embedding web assets into faceauthd"
  VERBATIM)
target_sources(faceauthd PRIVATE "${FA_WEB_GEN}")
